"""Re-ID training: PK sampling, cross-entropy + batch-hard triplet losses, augmentations, train_reid."""
from .checkpoint import save_checkpoint
from .command import main_train
from .losses import batch_hard_triplet, pairwise_distances, smoothed_cross_entropy
from .lr_schedule import learning_rate
from .sampler import PKSampler
from .trainer import TrainSettings, evaluate_model, record_features, train_reid

__all__ = ["PKSampler", "TrainSettings", "batch_hard_triplet", "evaluate_model", "learning_rate", "main_train",
           "pairwise_distances", "record_features", "save_checkpoint", "smoothed_cross_entropy", "train_reid"]
