"""Opening the `--model` of a command, with a progress bar when it must be downloaded first."""

from __future__ import annotations


def open_model(model: str | None, purpose: str):
    from varec_cli.commands.download import download_progress
    from varec_cli.models.classifier import open_classifier

    with download_progress() as progress_for:
        label = model or f"default {purpose} model"
        return open_classifier(model, purpose=purpose, progress=progress_for(label))
