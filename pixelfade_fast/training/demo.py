"""The recipe of the bundled demo model (scripts/train_demo_model.py): SynthPed data and training settings.

Kept in one place so that the script, its model card and ``pixelfade train --data synthped`` agree.
"""
from __future__ import annotations

DEMO_MODEL = "osnet_x0_25"

# generate_synthped arguments: train identities 1..N seen by 2 cameras; 100 test identities.
DEMO_SYNTHPED = {
    "num_ids_train": 100, "num_ids_test": 100, "images_per_id_per_cam": 5, "num_cams": 2,
    "size": (128, 64), "seed": 2024, "queries_per_id_per_cam": 1, "num_distractors": 0, "image_format": "png",
}

# train_reid settings (TrainSettings fields).
DEMO_TRAINING = {
    "input_size": (128, 64), "epochs": 60, "p": 16, "k": 4, "lr": 3e-3, "warmup_epochs": 5,
    "schedule": "cosine", "label_smoothing": 0.1, "triplet_margin": 0.3, "seed": 0,
}
