"""PK sampling for metric learning: every batch holds P identities with K images each."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class PKSampler:
    """Batches of P distinct identities x K images each (indices into ``labels``), seeded per epoch.

    One epoch walks every image about once: each identity's images are shuffled and cut into
    groups of K (an identity with fewer than K images is drawn K times with replacement; a last
    short group is topped up with other images of the same identity), then batches take one
    group from each of P identities chosen at random among those with groups left. Groups left
    over when fewer than P identities remain are dropped, so every batch has exactly P*K indices,
    ordered identity by identity. The batches of an epoch depend only on (labels, P, K, seed, epoch).
    """

    def __init__(self, labels: Sequence[int], p: int, k: int, seed: int = 0):
        for name, value in (("p", p), ("k", k)):
            if not isinstance(value, int) or value < 2:
                raise ValueError(f"{name} must be an int >= 2 (the triplet loss needs two identities with "
                                 f"two images each per batch), got {value!r}")
        self.labels = np.asarray(labels, dtype=np.int64)
        if self.labels.ndim != 1:
            raise ValueError(f"labels must be a flat sequence of identity labels, got shape {self.labels.shape}")
        self.p, self.k, self.seed = p, k, int(seed)
        identities, inverse = np.unique(self.labels, return_inverse=True)
        if len(identities) < p:
            raise ValueError(f"p={p} identities per batch but the labels hold only {len(identities)} "
                             f"identities: lower p or train on more identities")
        self._members = [np.flatnonzero(inverse == i) for i in range(len(identities))]

    def _groups(self, members: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
        if len(members) < self.k:
            return [rng.choice(members, size=self.k, replace=True)]
        order = rng.permutation(members)
        groups = [order[start:start + self.k] for start in range(0, len(order), self.k)]
        short = len(groups[-1])
        if short < self.k:  # top up from this identity's other images, no repeat within the group
            others = rng.choice(order[:-short], size=self.k - short, replace=False)
            groups[-1] = np.concatenate([groups[-1], others])
        return groups

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """The batches (lists of P*K indices into labels) of epoch number ``epoch``."""
        rng = np.random.default_rng([self.seed, int(epoch)])
        pending = [self._groups(members, rng) for members in self._members]
        batches = []
        while True:
            available = [i for i, groups in enumerate(pending) if groups]
            if len(available) < self.p:
                return batches
            chosen = rng.choice(available, size=self.p, replace=False)
            batches.append([int(index) for i in chosen for index in pending[i].pop()])
