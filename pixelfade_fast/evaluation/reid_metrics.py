"""Re-ID retrieval metrics (CMC rank-k, mAP, mINP) under the Market-1501 protocol, vectorised in torch.

Protocol, per query: gallery entries with the query's pid AND camera are removed (the same person seen by
the same camera is too easy), gallery entries with pid −1 (junk) are removed, distractors (pid 0) stay and
are simply never a match. A query with no remaining match is skipped and not counted in the averages.
Ties in distance are broken by gallery order (stable sort). A query without a camera (q_camids None: a text
description) removes nothing but junk: every gallery image of its pid is a match.
"""
from __future__ import annotations

from typing import Sequence

import torch

JUNK_PID = -1
DEFAULT_CHUNK_ELEMENTS = 1 << 22  # query rows x gallery size per chunk; peak memory is ~10 tensors of this size


def pairwise_sq_dist(qf: torch.Tensor, gf: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances [Q, G] between rows of qf [Q, D] and gf [G, D] (clamped at 0).

    For L2-normalised features this is 2 − 2·cos. Computed as |q|² + |g|² − 2 q·g in the features' dtype.
    """
    if qf.dim() != 2 or gf.dim() != 2 or qf.shape[1] != gf.shape[1]:
        raise ValueError(f"qf and gf must be [Q, D] and [G, D] with the same D, got {tuple(qf.shape)} "
                         f"and {tuple(gf.shape)}")
    dist = qf.pow(2).sum(1, keepdim=True) + gf.pow(2).sum(1)[None, :] - 2.0 * (qf @ gf.T)
    return dist.clamp_min_(0.0)


def _as_ids(values, length: int, name: str, device: torch.device) -> torch.Tensor:
    ids = torch.as_tensor(values, device=device).long().flatten()
    if ids.numel() != length:
        raise ValueError(f"{name} must hold one id per feature row ({length}), got {ids.numel()}")
    return ids


def _chunk_stats(dist, q_pids, q_camids, g_pids, g_camids, max_rank):
    """Per-query first-match rank, AP, INP and match count for one chunk of queries (q_camids None: no camera)."""
    order = torch.argsort(dist, dim=1, stable=True)
    pids = g_pids[order]
    same_pid = pids == q_pids[:, None]
    removed = pids == JUNK_PID
    if q_camids is not None:
        removed |= same_pid & (g_camids[order] == q_camids[:, None])
    keep = ~removed
    match = same_pid & keep
    position = torch.cumsum(keep, dim=1) - 1                          # 0-based rank among kept entries
    num_matches = match.sum(1)
    hits_so_far = torch.cumsum(match, dim=1)                          # matches up to and including here
    precision_at_match = torch.where(match, hits_so_far.double() / (position + 1).clamp_min(1), 0.0)
    big = torch.iinfo(torch.long).max
    first = torch.where(match, position, big).amin(1)
    last = torch.where(match, position, -1).amax(1)
    denom = num_matches.clamp_min(1)
    ap = precision_at_match.sum(1) / denom
    inp = num_matches.double() / (last + 1).clamp_min(1)
    cmc_hits = first[:, None] < torch.arange(1, max_rank + 1, device=dist.device)[None, :]
    return num_matches > 0, cmc_hits, ap, inp


def evaluate_reid(qf: torch.Tensor, q_pids, q_camids, gf: torch.Tensor, g_pids, g_camids,
                  ranks: Sequence[int] = (1, 5, 10), normalise: bool = True,
                  query_chunk: int | None = None) -> dict:
    """Rank-k accuracies, mAP and mINP of retrieving gallery images for each query, Market-1501 protocol.

    qf [Q, D], gf [G, D]: features (L2-normalised here unless normalise=False); pids/camids: sequences or
    tensors of ints; q_camids None for queries seen by no camera (text): no same-camera entry is removed.
    Distances are squared Euclidean. Runs on the features' device; the query dimension is processed in chunks
    (`query_chunk` rows, default sized so a chunk holds about 4 M query-gallery pairs).
    Returns {"rank<k>": fraction for each k, "mAP", "mINP", "num_valid_queries", "num_queries"}, fractions
    in [0, 1] averaged over the valid queries. INP of a query = number of matches / 1-based rank of its last
    match; AP = mean over its matches of the precision at that match's rank.
    """
    if not ranks or any(int(k) < 1 for k in ranks):
        raise ValueError(f"ranks must be positive ints, e.g. (1, 5, 10), got {ranks!r}")
    if qf.dim() != 2 or gf.dim() != 2 or qf.shape[0] == 0 or gf.shape[0] == 0:
        raise ValueError(f"qf and gf must be non-empty 2-D [N, D], got {tuple(qf.shape)} and {tuple(gf.shape)}")
    device = qf.device
    dtype = torch.promote_types(torch.promote_types(qf.dtype, gf.dtype), torch.float32)  # half -> float32
    qf, gf = qf.to(dtype), gf.to(device=device, dtype=dtype)
    q_pids = _as_ids(q_pids, len(qf), "q_pids", device)
    q_camids = None if q_camids is None else _as_ids(q_camids, len(qf), "q_camids", device)
    g_pids, g_camids = _as_ids(g_pids, len(gf), "g_pids", device), _as_ids(g_camids, len(gf), "g_camids", device)
    if normalise:
        qf, gf = torch.nn.functional.normalize(qf, dim=1), torch.nn.functional.normalize(gf, dim=1)
    if query_chunk is None:
        query_chunk = max(1, DEFAULT_CHUNK_ELEMENTS // max(1, gf.shape[0]))
    if query_chunk < 1:
        raise ValueError(f"query_chunk must be >= 1, got {query_chunk}")

    max_rank = max(int(k) for k in ranks)
    chunks = [
        _chunk_stats(pairwise_sq_dist(qf[start:start + query_chunk], gf), q_pids[start:start + query_chunk],
                     None if q_camids is None else q_camids[start:start + query_chunk], g_pids, g_camids, max_rank)
        for start in range(0, qf.shape[0], query_chunk)
    ]
    valid, cmc, ap, inp = (torch.cat(parts) for parts in zip(*chunks))
    num_valid = int(valid.sum())
    if num_valid == 0:
        raise ValueError("no query has a valid match in the gallery (same pid from another camera): "
                         "check that q_pids/g_pids and q_camids/g_camids describe the same identities and cameras")
    cmc = cmc[valid].double().mean(0)
    result = {f"rank{int(k)}": float(cmc[int(k) - 1]) for k in ranks}
    result["mAP"] = float(ap[valid].mean())
    result["mINP"] = float(inp[valid].mean())
    result["num_valid_queries"] = num_valid
    result["num_queries"] = int(qf.shape[0])
    return result


def reid_settings(q_original: torch.Tensor, q_protected: torch.Tensor, g_original: torch.Tensor,
                  g_protected: torch.Tensor, q_pids, q_camids, g_pids, g_camids, **kwargs) -> dict:
    """evaluate_reid in the four settings of a protected gallery, keyed "<query>-><gallery>".

    "protected->protected": both sides protected (a service storing only protected images);
    "original->protected": fresh original queries against a protected gallery; "protected->original";
    "original->original": no protection (the utility upper bound). kwargs go to evaluate_reid.
    """
    if q_original.shape != q_protected.shape or g_original.shape != g_protected.shape:
        raise ValueError("original and protected features must have the same shape: got query "
                         f"{tuple(q_original.shape)} vs {tuple(q_protected.shape)}, gallery "
                         f"{tuple(g_original.shape)} vs {tuple(g_protected.shape)}")
    queries = {"original": q_original, "protected": q_protected}
    galleries = {"original": g_original, "protected": g_protected}
    settings = (("protected", "protected"), ("original", "protected"), ("protected", "original"),
                ("original", "original"))
    return {f"{q}->{g}": evaluate_reid(queries[q], q_pids, q_camids, galleries[g], g_pids, g_camids, **kwargs)
            for q, g in settings}


def chance_levels(q_pids, q_camids, g_pids, g_camids, draws: int = 20, seed: int = 0, **kwargs) -> dict:
    """evaluate_reid of a random ranking under the same protocol, averaged over ``draws`` draws.

    Independent standard normal features rank the gallery in a uniformly random order for every query, so the
    mean of their scores estimates what a model that knows nothing would reach. kwargs go to evaluate_reid.
    """
    generator = torch.Generator().manual_seed(seed)
    num_q, num_g = len(q_pids), len(g_pids)
    runs = [evaluate_reid(torch.randn(num_q, 64, generator=generator, dtype=torch.float64), q_pids, q_camids,
                          torch.randn(num_g, 64, generator=generator, dtype=torch.float64), g_pids, g_camids, **kwargs)
            for _ in range(draws)]
    return {key: sum(run[key] for run in runs) / draws for key in runs[0]}
