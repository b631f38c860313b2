"""Best-of attackers and the verdict on whether the attack was strong enough to judge privacy at all.

A recovery figure is only as good as its attacker. Each figure (PSNR and SSIM separately) is therefore the best
of several attackers' mean scores over the test images (the attackers are registered in attackers.py), and the
name of the winner is kept: a method never
looks as if it leaked less than its own protected image shows. Picking the best of three on the test split is a
selection over three numbers, not per image, so it adds no measurable optimism.

The verdict uses blur as the control: a radius-12 blur keeps the colours and the silhouette, so an attacker that
cannot recover it clearly above the floor cannot show that any method leaks nothing.
"""
from __future__ import annotations

import math

METRICS = ("psnr", "ssim")
CONTROL_METHOD = "blur"
# The trained U-Net must recover the blurred control at least this far above the floor for the run's privacy
# figures to mean anything: half the target set for the strong attack (+6 dB, +0.2 SSIM; issue 10). The earlier
# CPU reports' attack (blur at +1.8 dB / +0.00 SSIM on CUHK01) fails it, as it should: it learned almost nothing.
SEPARATION_PSNR_DB = 3.0
SEPARATION_SSIM = 0.10


def best_of(attackers: dict[str, dict]) -> dict:
    """Per metric, the attacker with the highest mean: {psnr, ssim, psnr_attacker, ssim_attacker, attackers}.

    attackers: name -> a dict with at least "psnr" and "ssim" (means over the same test images); on a tie the
    first given wins (callers give them in the attacker registry's order: the trained network first).
    ``attackers`` in the result keeps each one's psnr and ssim.
    """
    if not attackers:
        raise ValueError("best_of needs at least one attacker")
    for name, scores in attackers.items():
        for metric in METRICS:
            if metric not in scores or not math.isfinite(float(scores[metric])):
                raise ValueError(f"attacker {name!r} has no finite {metric}: {scores.get(metric)!r}")
    rank = {name: index for index, name in enumerate(attackers)}
    result = {"attackers": {name: {m: float(s[m]) for m in METRICS} for name, s in attackers.items()}}
    for metric in METRICS:
        winner = max(attackers, key=lambda name: (float(attackers[name][metric]), -rank[name]))
        result[metric] = float(attackers[winner][metric])
        result[f"{metric}_attacker"] = winner
    return result


def attack_verdict(privacy: dict[str, dict], control: str = CONTROL_METHOD) -> dict:
    """Whether the run's attack separated the control (blur) from the floor.

    privacy: method -> the suite's privacy metrics (unet_leakage_psnr / unet_leakage_ssim needed for the control).
    Returns {"status": "conclusive" | "inconclusive" | "no control", "control", "reason"} plus, with a control,
    its U-Net leakage and whether the U-Net beat the control's own protected image in PSNR and in SSIM.
    """
    if control not in privacy:
        return {"status": "no control", "control": control,
                "reason": f"{control} was not evaluated, so nothing shows that this attack can recover a method "
                          f"that leaks; privacy figures are unverified (add {control} to the methods)"}
    p = privacy[control]
    gain_psnr, gain_ssim = p["unet_leakage_psnr"], p["unet_leakage_ssim"]
    separated = gain_psnr >= SEPARATION_PSNR_DB and gain_ssim >= SEPARATION_SSIM
    verdict = {"status": "conclusive" if separated else "inconclusive", "control": control,
               "unet_leakage_psnr": gain_psnr, "unet_leakage_ssim": gain_ssim,
               "unet_beats_protected_psnr": p["unet_psnr"] > p["visual_psnr"],
               "unet_beats_protected_ssim": p["unet_ssim"] > p["visual_ssim"]}
    needed = f"≥ {SEPARATION_PSNR_DB:g} dB and ≥ {SEPARATION_SSIM:g} SSIM"
    got = f"{gain_psnr:+.2f} dB, {gain_ssim:+.3f} SSIM"
    verdict["reason"] = (f"the trained U-Net recovered {control} at {got} over the floor ({needed} needed): "
                         + ("the attack separates a leaking method from the floor" if separated else
                            "the attack is too weak to separate a leaking method from the floor, so a method "
                            "near the floor is not shown to be private"))
    return verdict
