"""The recipes of the two bundled scenario models (scripts/train_scenario_models.py): data and settings.

Both train on one SynthPed call: the demo model's world (seed 2024: the same two visible cameras) plus two
infrared-like cameras and two captions per image. The dual encoder trains on the visible training images and
their captions, the cross-modality model on the training images of all four cameras. Kept in one place so that
the script, the model cards and the tests agree.
"""
from __future__ import annotations

from ..models.dual_encoder import DualEncoderSpec
from .demo import DEMO_SYNTHPED

SCENARIO_SYNTHPED = {**DEMO_SYNTHPED, "infrared_cams": 2, "captions_per_image": 2}
VISIBLE_CAMIDS = tuple(range(DEMO_SYNTHPED["num_cams"]))
INFRARED_CAMIDS = tuple(range(DEMO_SYNTHPED["num_cams"], DEMO_SYNTHPED["num_cams"] + 2))

DUAL_ENCODER_SPEC = DualEncoderSpec(image_model="osnet_x0_25", input_size=(128, 64), embed_dim=256, text_width=128,
                                    text_layers=2, text_heads=4, max_length=48)
# Both image networks start from the bundled demo model (OSNet-x0.25 trained on the same 100 training identities,
# visible cameras only): 12 epochs from it fit the shared 2-core CPU (the demo model itself trained 60 from scratch).
INIT_WEIGHTS = "osnet_x0_25_synthped.safetensors"  # in pixelfade_fast/assets
DUAL_ENCODER_TRAINING = {"epochs": 12, "p": 16, "k": 4, "lr": 3e-3, "text_lr": 1e-3, "warmup_epochs": 2,
                         "id_weight": 1.0, "label_smoothing": 0.1, "seed": 0}

CROSS_MODALITY_MODEL = "osnet_x0_25"
CROSS_MODALITY_TRAINING = {
    "input_size": (128, 64), "epochs": 12, "p": 16, "k": 4, "lr": 3e-3, "warmup_epochs": 2,
    "schedule": "cosine", "label_smoothing": 0.1, "triplet_margin": 0.3, "seed": 0,
}
