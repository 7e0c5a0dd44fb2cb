"""LoRA training: `scumble train-lora` (cli/train_lora.py) is a thin layer over train.train."""
