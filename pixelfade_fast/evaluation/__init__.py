"""Evaluation: Re-ID retrieval metrics, privacy metrics, the recovery attack, baselines, the suite and its report."""
from .ablations import (fade_towards, l1_to_noise, noise_interpolation, objective_contrastive,
                        objective_other_identity, objective_zeros, random_perturb)
from .attack import attacker_noise, evaluate_recovery, prior_floor, run_attack, score_images, train_recovery
from .attack_settings import ATTACK_PRESETS, AttackSettings, attack_preset
from .baselines import avih, gaussian_blur, mosaic, pixelfade, total_variation
from .leakage import attack_verdict, best_of
from .methods import METHODS, Method, register_method
from .privacy import anderson_darling, anderson_darling_summary, psnr, ssim, to_normalised
from .reid_metrics import evaluate_reid, pairwise_sq_dist, reid_settings
from .unet import RecoveryUNet

__all__ = ["ATTACK_PRESETS", "AttackSettings", "METHODS", "Method", "RecoveryUNet",
           "anderson_darling", "anderson_darling_summary", "attack_preset", "attack_verdict", "attacker_noise", "avih",
           "best_of", "evaluate_recovery", "evaluate_reid", "fade_towards", "gaussian_blur",
           "l1_to_noise", "mosaic", "noise_interpolation", "objective_contrastive", "objective_other_identity",
           "objective_zeros", "pairwise_sq_dist", "pixelfade", "prior_floor", "psnr", "random_perturb",
           "register_method", "reid_settings", "run_attack", "score_images", "ssim", "to_normalised", "total_variation",
           "train_recovery"]
