"""Drawing predictions on frames: readable from 176x144 to 4K, never clipped by the frame edge."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FONT = 0  # cv2.FONT_HERSHEY_SIMPLEX, without importing cv2 at module level
BOX_OPACITY = 0.6  # how much the box darkens the picture under the text
MIN_FONT_SCALE = 0.4  # Hershey simplex at 0.4 is ~11 px tall: the smallest size still legible
SHRINK_FLOOR = 0.25  # an explicit or default scale may shrink down to this to fit a tiny frame
ELLIPSIS = ".."  # Hershey fonts are ASCII-only


@dataclass(frozen=True)
class Box:
    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def empty(self) -> bool:
        return self.x1 <= self.x0 or self.y1 <= self.y0

    def union(self, other: Box) -> Box:
        if self.empty:
            return other
        if other.empty:
            return self
        return Box(min(self.x0, other.x0), min(self.y0, other.y0), max(self.x1, other.x1), max(self.y1, other.y1))


def default_font_scale(height: int, width: int) -> float:
    """1/720 of the shorter side, at least MIN_FONT_SCALE: 0.4 at 144p, 1.0 at 720p, 1.5 at 1080p, 3.0 at 4K
    (text about 1/27 of the shorter side tall)."""
    return max(MIN_FONT_SCALE, min(height, width) / 720.0)


def _thickness(scale: float) -> int:
    return max(1, int(round(2 * scale)))


def _layout(texts: list[str], scale: float, bars: bool):
    import cv2

    thickness = _thickness(scale)
    margin = max(2, int(round(6 * scale)))
    sizes = [cv2.getTextSize(t, FONT, scale, thickness) for t in texts]
    text_w = max(w for (w, _), _ in sizes)
    line_h = max(h + base for (_, h), base in sizes) + margin
    bar_w = int(round(text_w * 0.35)) if bars else 0
    box_w = text_w + 2 * margin + (bar_w + 2 * margin if bars else 0)  # bars sit 2 margins right of the text
    box_h = line_h * len(texts) + margin
    return thickness, margin, sizes, text_w, line_h, bar_w, box_w, box_h


def _fits(layout, width: int, height: int) -> bool:
    return layout[6] <= width and layout[7] <= height


def _largest_scale(texts: list[str], scale: float, floor: float, bars: bool, width: int, height: int) -> float:
    """The largest scale up to `scale` (and not below `floor`) at which the box fits, within 1%: the box
    grows about linearly with the scale, so a first guess from the ratio is close; halving the interval
    settles the rounding (margins and line thickness go by whole pixels)."""
    def fits(at: float) -> bool:
        return _fits(_layout(texts, at, bars), width, height)

    layout = _layout(texts, scale, bars)
    if _fits(layout, width, height):
        return scale
    low = max(floor, min(scale, scale * min(width / layout[6], height / layout[7])))
    while low > floor and not fits(low):
        low = max(floor, low * 0.9)
    if not fits(low):
        return floor
    high = scale
    while high - low > 0.01 * low:
        middle = (low + high) / 2
        low, high = (middle, high) if fits(middle) else (low, middle)
    return low


def _fit(lines: list[tuple[str, str]], scale: float, bars: bool, width: int, height: int):
    """(label, score) text pairs → (texts, scale, layout) of a box inside the frame.

    Readability first: shrink to the largest fitting scale, but not below MIN_FONT_SCALE (or the scale
    asked for, when smaller); then drop trailing lines (the best-scoring come first) while too tall;
    then shorten the widest label with "..", keeping its score; only then shrink further, to SHRINK_FLOOR.
    """
    import cv2

    def joined(pairs):
        return [label + score for label, score in pairs]

    scale = _largest_scale(joined(lines), scale, min(scale, MIN_FONT_SCALE), bars, width, height)
    layout = _layout(joined(lines), scale, bars)
    while len(lines) > 1 and layout[7] > height:
        lines = lines[:-1]
        layout = _layout(joined(lines), scale, bars)
    while layout[6] > width:
        thickness = layout[0]
        widths = [cv2.getTextSize(t, FONT, scale, thickness)[0][0] for t in joined(lines)]
        i = int(np.argmax(widths))
        label, score = lines[i]
        stem = label[: -len(ELLIPSIS)] if label.endswith(ELLIPSIS) else label
        if len(stem) <= 1:
            break
        lines = lines[:i] + [(stem[:-1] + ELLIPSIS, score)] + lines[i + 1 :]
        layout = _layout(joined(lines), scale, bars)
    if not _fits(layout, width, height):  # a frame too small for readable text: smaller still
        scale = _largest_scale(joined(lines), scale, min(scale, SHRINK_FLOOR), bars, width, height)
        layout = _layout(joined(lines), scale, bars)
        while len(lines) > 1 and layout[7] > height:
            lines = lines[:-1]
            layout = _layout(joined(lines), scale, bars)
    return joined(lines), scale, layout


def draw_predictions(
    frame: np.ndarray,
    lines: list[tuple[str, float | None]],
    *,
    font_scale: float | None = None,
    bars: bool = False,
    footer: str | None = None,
) -> Box:
    """Draw `label  0.91` lines (optionally with probability bars) in a dark semi-transparent box at
    the top-left of a BGR frame, in place. Returns the box drawn (an empty Box when nothing is drawn).

    The scale follows the frame size unless `font_scale` is given; either way the box is fitted inside
    the frame (see _fit): long labels are shortened with "..", their scores always shown.
    """
    import cv2

    height, width = frame.shape[:2]
    pairs = [(label, "" if score is None else f"  {score:.2f}") for label, score in lines]
    scores: list[float | None] = [score for _, score in lines]
    if footer:
        pairs.append((footer, ""))
        scores.append(None)
    if not pairs or height < 1 or width < 1:
        return Box(0, 0, 0, 0)
    scale = font_scale if font_scale and font_scale > 0 else default_font_scale(height, width)
    # No line of text taller than the frame (about 22 px at scale 1): the fitting starts there, and
    # OpenCV's text functions crash the process on the strokes of a scale in the thousands.
    scale = min(scale, max(MIN_FONT_SCALE, height / 20.0))
    texts, scale, layout = _fit(pairs, scale, bars, width, height)
    thickness, margin, sizes, text_w, line_h, bar_w, box_w, box_h = layout
    box = Box(0, 0, min(width, box_w), min(height, box_h))

    region = frame[box.y0 : box.y1, box.x0 : box.x1]
    region[:] = (region.astype(np.float32) * (1.0 - BOX_OPACITY)).astype(np.uint8)

    footer_row = len(lines) if footer else -1
    for i, text in enumerate(texts):
        (_, text_h), _ = sizes[i]
        y = margin + i * line_h + text_h
        color = (200, 200, 200) if i == footer_row else (255, 255, 255)
        cv2.putText(frame, text, (margin, y), FONT, scale, color, thickness, cv2.LINE_AA)
        score = scores[i]
        if bars and score is not None and i != footer_row:
            x0 = margin + text_w + 2 * margin
            bar_h = max(2, text_h // 2)
            y0 = y - text_h // 2 - bar_h // 2
            cv2.rectangle(frame, (x0, y0), (x0 + bar_w, y0 + bar_h), (90, 90, 90), -1)
            filled = int(round(bar_w * max(0.0, min(1.0, float(score)))))
            if filled:
                cv2.rectangle(frame, (x0, y0), (x0 + filled, y0 + bar_h), (80, 200, 80), -1)
    return box
