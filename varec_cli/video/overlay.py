"""Drawing predictions on frames: readable from 176x144 to 4K, never clipped by the frame edge."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FONT = 0  # cv2.FONT_HERSHEY_SIMPLEX, without importing cv2 at module level
BOX_OPACITY = 0.6


@dataclass(frozen=True)
class Box:
    x0: int
    y0: int
    x1: int
    y1: int


def default_font_scale(height: int, width: int) -> float:
    """About 1/30 of the shorter side per text line: ~0.5 at 144p, 1.0 at 720p, 2.1 at 4K."""
    return max(0.35, min(height, width) / 720.0)


def draw_predictions(
    frame: np.ndarray,
    lines: list[tuple[str, float | None]],
    *,
    font_scale: float | None = None,
    bars: bool = False,
    footer: str | None = None,
) -> Box:
    """Draw `label  0.91` lines (optionally with probability bars) in a dark semi-transparent box at
    the top-left of a BGR frame, in place. Returns the box drawn."""
    import cv2

    height, width = frame.shape[:2]
    scale = font_scale if font_scale else default_font_scale(height, width)
    texts = [label if score is None else f"{label}  {score:.2f}" for label, score in lines]
    if footer:
        texts.append(footer)
    if not texts:
        return Box(0, 0, 0, 0)
    margin = max(2, int(round(6 * scale)))

    def measure(s: float):
        thick = max(1, int(round(2 * s)))
        sizes = [cv2.getTextSize(t, FONT, s, thick) for t in texts]
        text_w = max(w for (w, _), _ in sizes)
        line_h = max(h + base for (_, h), base in sizes) + margin
        bar_w = int(text_w * 0.35) if bars else 0
        return thick, sizes, text_w, line_h, bar_w

    thickness, sizes, text_w, line_h, bar_w = measure(scale)
    # Shrink until the box fits inside the frame; text is never cut by the edge.
    while scale > 0.2 and (
        text_w + bar_w + 3 * margin > width or line_h * len(texts) + 2 * margin > height
    ):
        scale *= 0.85
        thickness, sizes, text_w, line_h, bar_w = measure(scale)

    box_w = min(width, text_w + (bar_w + margin if bars else 0) + 2 * margin)
    box_h = min(height, line_h * len(texts) + margin)
    box = Box(0, 0, box_w, box_h)
    region = frame[box.y0 : box.y1, box.x0 : box.x1]
    region[:] = (region.astype(np.float32) * (1.0 - BOX_OPACITY)).astype(np.uint8)

    for i, text in enumerate(texts):
        (_, text_h), _ = sizes[i]
        y = margin + i * line_h + text_h
        is_footer = footer is not None and i == len(texts) - 1
        color = (200, 200, 200) if is_footer else (255, 255, 255)
        cv2.putText(frame, text, (margin, y), FONT, scale, color, thickness, cv2.LINE_AA)
        score = None if is_footer or i >= len(lines) else lines[i][1]
        if bars and score is not None:
            x0 = margin + text_w + margin
            bar_h = max(2, text_h // 2)
            y0 = y - text_h // 2 - bar_h // 2
            cv2.rectangle(frame, (x0, y0), (x0 + bar_w, y0 + bar_h), (90, 90, 90), -1)
            filled = int(round(bar_w * max(0.0, min(1.0, score))))
            if filled:
                cv2.rectangle(frame, (x0, y0), (x0 + filled, y0 + bar_h), (80, 200, 80), -1)
    return box
