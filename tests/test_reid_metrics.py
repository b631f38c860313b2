"""Re-ID metrics: a hand-computed case, an independent numpy loop on random data, chunking, devices."""
import numpy as np
import pytest
import torch

from pixelfade_fast.evaluation import evaluate_reid, pairwise_sq_dist, reid_settings


def reference_reid(qf, q_pids, q_camids, gf, g_pids, g_camids, ranks):
    """Plain numpy loop over queries and their sorted gallery, Market-1501 protocol (float64)."""
    qf = qf / np.linalg.norm(qf, axis=1, keepdims=True)
    gf = gf / np.linalg.norm(gf, axis=1, keepdims=True)
    hits = {k: [] for k in ranks}
    aps, inps = [], []
    for i in range(len(qf)):
        dist = ((gf - qf[i]) ** 2).sum(1)
        rank, found, precisions, first, last = 0, 0, [], None, None
        for j in np.argsort(dist, kind="stable"):
            if g_pids[j] == -1 or (g_pids[j] == q_pids[i] and g_camids[j] == q_camids[i]):
                continue
            rank += 1
            if g_pids[j] == q_pids[i]:
                found += 1
                precisions.append(found / rank)
                first = rank if first is None else first
                last = rank
        if found == 0:
            continue
        for k in ranks:
            hits[k].append(first <= k)
        aps.append(np.mean(precisions))
        inps.append(found / last)
    out = {f"rank{k}": float(np.mean(hits[k])) for k in ranks}
    out.update(mAP=float(np.mean(aps)), mINP=float(np.mean(inps)), num_valid_queries=len(aps))
    return out


def test_hand_computed_case():
    # 1-D features, no normalisation: the distance order is the order along the line.
    # gallery: feature, pid, cam
    g = [(0.1, 1, 0), (0.2, 2, 1), (0.3, 1, 1), (0.4, -1, 1), (0.5, 0, 2), (0.6, 1, 2), (0.7, 3, 1)]
    # query A pid1 cam0 @0.00: g0 removed (same pid+cam), g3 junk removed; kept order g1 g2* g4 g5* g6
    #   matches at ranks 2 and 4: AP = (1/2 + 2/4)/2 = 0.5, INP = 2/4 = 0.5, first match rank 2
    # query B pid2 cam0 @0.21: kept order g1* g2 g0 g4 g5 g6: AP = 1, INP = 1, first match rank 1
    # query C pid3 cam1 @1.00: its only same-pid entry g6 is the same camera -> no valid match, skipped
    # query D pid1 cam2 @0.66: g5 removed, g3 junk; kept order g6 g4 g2* g1 g0* (distractor g4 counts)
    #   matches at 3 and 5: AP = (1/3 + 2/5)/2 = 11/30, INP = 2/5, first match rank 3
    q = [(0.0, 1, 0), (0.21, 2, 0), (1.0, 3, 1), (0.66, 1, 2)]
    qf = torch.tensor([[x] for x, _, _ in q], dtype=torch.float64)
    gf = torch.tensor([[x] for x, _, _ in g], dtype=torch.float64)
    res = evaluate_reid(qf, [p for _, p, _ in q], [c for _, _, c in q], gf, [p for _, p, _ in g],
                        [c for _, _, c in g], ranks=(1, 2, 3, 5), normalise=False)
    assert res["num_valid_queries"] == 3 and res["num_queries"] == 4
    assert res["rank1"] == pytest.approx(1 / 3)          # only B
    assert res["rank2"] == pytest.approx(2 / 3)          # A and B
    assert res["rank3"] == pytest.approx(1.0)
    assert res["rank5"] == pytest.approx(1.0)
    assert res["mAP"] == pytest.approx((0.5 + 1.0 + 11 / 30) / 3)
    assert res["mINP"] == pytest.approx((0.5 + 1.0 + 0.4) / 3)


@pytest.mark.parametrize("num_q,num_g,dim,num_ids,num_cams,seed", [
    (1, 5, 3, 2, 2, 0), (7, 40, 8, 5, 3, 1), (50, 300, 16, 20, 4, 2), (33, 120, 4, 60, 2, 3),
])
def test_matches_numpy_loop_on_random_data(num_q, num_g, dim, num_ids, num_cams, seed):
    rng = np.random.default_rng(seed)
    qf, gf = rng.normal(size=(num_q, dim)), rng.normal(size=(num_g, dim))
    q_pids = rng.integers(1, num_ids + 1, num_q)
    g_pids = rng.integers(-1, num_ids + 1, num_g)      # includes junk (-1) and distractors (0)
    q_camids, g_camids = rng.integers(0, num_cams, num_q), rng.integers(0, num_cams, num_g)
    g_pids[: min(num_q, num_g)] = q_pids[: min(num_q, num_g)]  # every query likely has a match somewhere
    g_camids[: min(num_q, num_g)] = (q_camids[: min(num_q, num_g)] + 1) % num_cams
    ranks = (1, 2, 5, 10)
    expected = reference_reid(qf, q_pids, q_camids, gf, g_pids, g_camids, ranks)
    for chunk in (None, 1, 4):
        got = evaluate_reid(torch.from_numpy(qf), q_pids, q_camids, torch.from_numpy(gf), torch.from_numpy(g_pids),
                            g_camids, ranks=ranks, query_chunk=chunk)
        assert got["num_valid_queries"] == expected["num_valid_queries"]
        for key in ("rank1", "rank2", "rank5", "rank10", "mAP", "mINP"):
            assert got[key] == pytest.approx(expected[key], abs=1e-12), (key, chunk)


def test_float32_features_agree_with_float64():
    rng = np.random.default_rng(5)
    qf, gf = rng.normal(size=(30, 32)), rng.normal(size=(200, 32))
    ids = dict(q_pids=rng.integers(1, 40, 30), q_camids=rng.integers(0, 3, 30),
               g_pids=rng.integers(1, 40, 200), g_camids=rng.integers(0, 3, 200))
    expected = reference_reid(qf, ids["q_pids"], ids["q_camids"], gf, ids["g_pids"], ids["g_camids"], (1, 5))
    got = evaluate_reid(torch.from_numpy(qf).float(), ids["q_pids"], ids["q_camids"], torch.from_numpy(gf).float(),
                        ids["g_pids"], ids["g_camids"], ranks=(1, 5))
    assert got["mAP"] == pytest.approx(expected["mAP"], abs=1e-6)
    assert got["rank1"] == pytest.approx(expected["rank1"])


def test_pairwise_sq_dist_matches_direct_difference():
    torch.manual_seed(0)
    qf, gf = torch.randn(9, 5, dtype=torch.float64), torch.randn(13, 5, dtype=torch.float64)
    direct = ((qf[:, None, :] - gf[None, :, :]) ** 2).sum(-1)
    assert torch.allclose(pairwise_sq_dist(qf, gf), direct, atol=1e-12)
    unit = torch.nn.functional.normalize(qf, dim=1)
    assert torch.allclose(pairwise_sq_dist(unit, unit).diagonal(), torch.zeros(9, dtype=torch.float64), atol=1e-12)
    assert (pairwise_sq_dist(unit, unit) >= 0).all()


def test_perfect_features_give_perfect_scores():
    # Each identity has its own direction; query and gallery copies sit on it from different cameras.
    pids = torch.arange(1, 11)
    feats = torch.eye(10)
    res = evaluate_reid(feats, pids, torch.zeros(10), feats.repeat(2, 1), pids.repeat(2), torch.ones(20))
    assert res["rank1"] == 1.0 and res["mAP"] == 1.0 and res["mINP"] == 1.0 and res["num_valid_queries"] == 10


def test_reid_settings_pairs_query_and_gallery_features_correctly():
    rng = np.random.default_rng(7)
    q_pids, g_pids = rng.integers(1, 15, 25), rng.integers(1, 15, 90)
    q_camids, g_camids = rng.integers(0, 2, 25), rng.integers(0, 2, 90)
    feats = {name: torch.from_numpy(rng.normal(size=(n, 6))) for name, n in
             (("qo", 25), ("qp", 25), ("go", 90), ("gp", 90))}
    out = reid_settings(feats["qo"], feats["qp"], feats["go"], feats["gp"], q_pids, q_camids, g_pids, g_camids,
                        ranks=(1,))
    pairs = {"protected->protected": ("qp", "gp"), "original->protected": ("qo", "gp"),
             "protected->original": ("qp", "go"), "original->original": ("qo", "go")}
    assert set(out) == set(pairs)
    maps = set()
    for key, (q, g) in pairs.items():
        expected = reference_reid(feats[q].numpy(), q_pids, q_camids, feats[g].numpy(), g_pids, g_camids, (1,))
        assert out[key]["mAP"] == pytest.approx(expected["mAP"], abs=1e-12), key
        maps.add(round(out[key]["mAP"], 12))
    assert len(maps) == 4  # random features: a swapped pairing would be detected


def test_errors_name_the_problem():
    qf, gf = torch.randn(3, 4), torch.randn(5, 4)
    with pytest.raises(ValueError, match="q_pids"):
        evaluate_reid(qf, [1, 2], [0, 0, 0], gf, [1] * 5, [1] * 5)
    with pytest.raises(ValueError, match="no query has a valid match"):
        evaluate_reid(qf, [1, 2, 3], [0, 0, 0], gf, [9] * 5, [1] * 5)
    with pytest.raises(ValueError, match="same D"):
        pairwise_sq_dist(qf, torch.randn(5, 3))
    with pytest.raises(ValueError, match="ranks"):
        evaluate_reid(qf, [1, 2, 3], [0, 0, 0], gf, [1] * 5, [1] * 5, ranks=(0,))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu_on_large_gallery():
    gen = torch.Generator().manual_seed(0)
    qf, gf = torch.randn(1500, 128, generator=gen), torch.randn(30000, 128, generator=gen)
    q_pids, g_pids = torch.randint(1, 800, (1500,), generator=gen), torch.randint(-1, 800, (30000,), generator=gen)
    q_camids, g_camids = torch.randint(0, 6, (1500,), generator=gen), torch.randint(0, 6, (30000,), generator=gen)
    args = dict(ranks=(1, 5, 10))
    cpu = evaluate_reid(qf.double(), q_pids, q_camids, gf.double(), g_pids, g_camids, query_chunk=256, **args)
    gpu = evaluate_reid(qf.double().cuda(), q_pids, q_camids, gf.double().cuda(), g_pids, g_camids, **args)
    for key in cpu:
        assert gpu[key] == pytest.approx(cpu[key], abs=1e-9), key
