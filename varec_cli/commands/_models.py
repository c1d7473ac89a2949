"""Opening the `--model` of a command, with a progress bar when it must be downloaded first."""

from __future__ import annotations

# --model's help where the registry's predict default applies (predict, annotate): one text, so both say the same.
MODEL_HELP = (
    "A model file or folder, or a registry name (see `varec models`); default: the registry's default "
    "(MoViNet-A0, Kinetics-600)."
)


def open_model(model: str | None, purpose: str):
    from varec_cli.commands.download import download_progress
    from varec_cli.models.classifier import open_classifier

    with download_progress() as progress_for:
        label = model or _default_name(purpose)
        return open_classifier(model, purpose=purpose, progress=progress_for(label))


def _default_name(purpose: str) -> str:
    """The registry's default for `purpose`, by name, for the download line (a broken registry is
    reported by open_classifier itself)."""
    from varec_cli.errors import VarecError
    from varec_cli.weights.resolve import default_model_name

    try:
        return f"{default_model_name(purpose)} (the default {purpose} model)"
    except VarecError:
        return f"default {purpose} model"
