"""The commands, a module each (cli.py registers them); help texts several of them share."""

# --dataset's help for train and evaluate: one text, so both say the same.
DATASET_HELP = (
    "ucf101 or hmdb51 (a folder of that name in VAREC_DATA_DIR, by default the user data folder's "
    "varec/datasets), or the path of a dataset folder."
)

# --clips' upper bound (predict, evaluate): views are decoded and held at once, and far fewer already
# cover a video (10 is the usual multi-view test); a typo of many digits would fill the memory.
MAX_CLIPS = 100
