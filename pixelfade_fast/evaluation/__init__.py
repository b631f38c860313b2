"""Evaluation: Re-ID retrieval metrics, privacy metrics, the recovery attack, baselines, the suite and its report."""
from .ablations import (ABLATIONS, fade_towards, l1_to_noise, noise_interpolation, objective_contrastive,
                        objective_other_identity, objective_zeros, random_perturb)
from .attack import attacker_noise, evaluate_recovery, prior_floor, run_attack, train_recovery
from .baselines import BASELINES, avih, gaussian_blur, mosaic, pixelfade, total_variation
from .privacy import anderson_darling, anderson_darling_summary, psnr, ssim, to_normalised
from .reid_metrics import evaluate_reid, pairwise_sq_dist, reid_settings
from .unet import RecoveryUNet

__all__ = ["ABLATIONS", "BASELINES", "RecoveryUNet", "anderson_darling", "anderson_darling_summary",
           "attacker_noise", "avih", "evaluate_recovery", "evaluate_reid", "fade_towards", "gaussian_blur",
           "l1_to_noise", "mosaic", "noise_interpolation", "objective_contrastive", "objective_other_identity",
           "objective_zeros", "pairwise_sq_dist", "pixelfade", "prior_floor", "psnr", "random_perturb",
           "reid_settings", "run_attack", "ssim", "to_normalised", "total_variation", "train_recovery"]
