import random

import numpy as np
import pytest
from PIL import Image, ImageDraw

from photosim import evaluation
from photosim.evaluation import EvalReport, evaluate_folder, near_duplicate_recall, retrieval_metrics


def test_perfect_clustering_scores_one():
    rng = np.random.default_rng(0)
    centres = np.eye(4, 16)
    labels = np.repeat(np.arange(4), 5)
    v = centres[labels] + 0.01 * rng.standard_normal((20, 16))
    m = retrieval_metrics(v, labels)
    assert m["recall_at_1"] == pytest.approx(1.0)
    assert m["map_at_r"] == pytest.approx(1.0)
    # 4 relevant of every 10 retrieved
    assert m["precision_at_10"] == pytest.approx(0.4)
    assert m["n_queries"] == 20


def test_known_map_at_r():
    # 1-D "angles" on the unit circle so that the ranking is fully controlled.
    def at(deg):
        return [np.cos(np.radians(deg)), np.sin(np.radians(deg))]

    # query a (0°): same-label items b (10°) and d (30°); other label c at 20°, e at 40°.
    # Ranking from a: b(rel), c, d(rel), e.  R = 2 → MAP@R = (1/1 + 0) / 2 = 0.5
    v = np.array([at(0), at(10), at(20), at(30), at(40)])
    labels = ["x", "x", "y", "x", "y"]
    m = retrieval_metrics(v, labels, chunk=2)
    # compute every query by hand
    # a: R=2, ranking b,c,d,e → top2 = [rel, not] → (1)/2 = 0.5
    # b(10°): dists a10,c10,d20,e30; tie a/c broken by index → a first: [rel, not] → 0.5
    # d(30°): c10,e10,b20,a30 → top2 [not, not] → 0
    # c(20°): R=1: b10,d10 (tie→b) → not rel → 0
    # e(40°): R=1: d10 → not rel → 0
    assert m["map_at_r"] == pytest.approx((0.5 + 0.5 + 0 + 0 + 0) / 5)
    assert m["recall_at_1"] == pytest.approx(2 / 5)


def _brute_force(v, labels):
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    labels = np.asarray(labels)
    r1 = p10 = mapr = 0.0
    n_q = 0
    for i in range(len(v)):
        others = [j for j in range(len(v)) if j != i]
        R = int((labels[others] == labels[i]).sum())
        if R == 0:
            continue
        n_q += 1
        ranked = sorted(others, key=lambda j: -float(v[i] @ v[j]))
        rel = [labels[j] == labels[i] for j in ranked]
        r1 += rel[0]
        p10 += sum(rel[:10]) / 10
        mapr += sum(sum(rel[: k + 1]) / (k + 1) for k in range(R) if rel[k]) / R
    return r1 / n_q, p10 / n_q, mapr / n_q


def test_matches_brute_force_definition():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 6, 60)
    v = rng.standard_normal((60, 5)) + 1.5 * np.eye(6, 5)[labels]
    m = retrieval_metrics(v, labels, chunk=13)
    r1, p10, mapr = _brute_force(v, labels)
    assert m["recall_at_1"] == pytest.approx(r1)
    assert m["precision_at_10"] == pytest.approx(p10)
    assert m["map_at_r"] == pytest.approx(mapr)


def test_singletons_are_not_queries_and_chunking_is_exact():
    rng = np.random.default_rng(1)
    v = rng.standard_normal((300, 8))
    labels = list(rng.integers(0, 30, 299)) + [999]
    a = retrieval_metrics(v, labels, chunk=7)
    b = retrieval_metrics(v, labels, chunk=10_000)
    assert a["n_queries"] == 299
    for key in ("recall_at_1", "precision_at_10", "map_at_r"):
        assert a[key] == pytest.approx(b[key])
        assert 0 <= a[key] <= 1


def test_random_vectors_score_low():
    rng = np.random.default_rng(2)
    v = rng.standard_normal((400, 64))
    labels = np.repeat(np.arange(20), 20)
    m = retrieval_metrics(v, labels)
    assert m["map_at_r"] < 0.15


class ToyEncoder:
    """Colour-histogram-ish 'encoder', rotation invariant by construction."""

    id = "toy"
    dim = 48

    def embed(self, images):
        out = []
        for im in images:
            arr = np.asarray(im.convert("RGB").resize((32, 32)), dtype=np.float32) / 255
            hist = [np.histogram(arr[..., c], bins=16, range=(0, 1))[0] for c in range(3)]
            out.append(np.concatenate(hist).astype(np.float32) + 1e-3)
        v = np.stack(out)
        return v / np.linalg.norm(v, axis=1, keepdims=True)


def _album(tmp_path, per_class=8):
    colours = {"red": (220, 40, 30), "green": (30, 180, 60), "blue": (30, 60, 220)}
    rng = random.Random(0)
    for name, col in colours.items():
        d = tmp_path / "album" / name
        d.mkdir(parents=True)
        for i in range(per_class):
            bg = tuple(rng.randint(0, 255) for _ in range(3))
            img = Image.new("RGB", (96, 64), bg)
            draw = ImageDraw.Draw(img)
            x, y = rng.randint(0, 40), rng.randint(0, 20)
            draw.ellipse((x, y, x + 50, y + 40), fill=col)
            img.save(d / f"{i}.jpg", quality=90)
    (tmp_path / "album" / "red" / "broken.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "album" / "notes.txt").write_text("ignored")
    return tmp_path / "album"


def test_evaluate_folder_on_generated_album(tmp_path):
    folder = _album(tmp_path)
    calls = []
    report = evaluate_folder(ToyEncoder(), folder, near_dup_sample=6, seed=1,
                             batch_size=5, progress=lambda *a: calls.append(a))
    assert isinstance(report, EvalReport)
    assert report.n_photos == 24 and report.n_classes == 3 and report.n_skipped == 1
    for key in ("recall_at_1", "precision_at_10", "map_at_r"):
        assert 0 <= report.retrieval[key] <= 1
    nd = report.near_duplicates
    assert nd["n_originals"] == 6
    assert set(nd["per_kind"]) == set(evaluation.NEAR_DUP_KINDS)
    assert nd["n_queries"] == 6 * len(evaluation.NEAR_DUP_KINDS)
    # distinct random backgrounds make every photo its own histogram: rotations are exact
    assert nd["rotation_recall_at_1"] == 1.0
    assert nd["recall_at_1"] >= 0.8
    d = report.to_dict()
    assert d["retrieval"]["map_at_r"] == report.retrieval["map_at_r"]
    text = report.format_text()
    assert "mAP@R" in text and "rotate90" in text and "unreadable" in text
    assert calls and calls[-1][1] == calls[-1][2]


def test_evaluate_folder_is_deterministic(tmp_path):
    folder = _album(tmp_path, per_class=4)
    a = evaluate_folder(ToyEncoder(), folder, near_dup_sample=5, seed=3).to_dict()
    b = evaluate_folder(ToyEncoder(), folder, near_dup_sample=5, seed=3).to_dict()
    for r in (a, b):
        r.pop("embed_seconds"), r.pop("images_per_second")
    assert a == b


def test_near_duplicate_recall_with_identity_gallery():
    rng = random.Random(0)
    images = [Image.new("RGB", (40, 30), (i * 20, 255 - i * 20, (i * 37) % 255)) for i in range(10)]
    res = near_duplicate_recall(ToyEncoder(), images, rng, sample=4, kinds=["rotate90", "jpeg"])
    assert res["n_queries"] == 8 and res["n_gallery"] == 10
    assert res["per_kind"]["rotate90"] == 1.0


def test_eval_command_with_the_bundled_encoder(tmp_path, capsys):
    """``photosim eval`` on a tiny album folder, with the real shipped encoder."""
    import json

    from photosim.cli import main as cli_main

    from photosim import Library

    folder = _album(tmp_path, per_class=5)
    Library(tmp_path / "lib").close()  # eval reads a library; only scan makes one
    code = cli_main(["eval", str(folder), "--json", "--near-dup-sample", "4", "--library", str(tmp_path / "lib")])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_photos"] == 15 and out["n_classes"] == 3 and out["n_skipped"] == 1
    for key in ("recall_at_1", "precision_at_10", "map_at_r"):
        assert 0 <= out["retrieval"][key] <= 1
    # one coloured ellipse per album on random backgrounds: far above chance (1/3)
    assert out["retrieval"]["recall_at_1"] >= 0.6
    assert out["near_duplicates"]["recall_at_1"] >= 0.9
    from photosim.card import ModelCard
    from photosim.encoder import bundled_model_dir

    assert out["model_id"] == ModelCard.load(bundled_model_dir() / "card.json").id
    assert cli_main(["eval", str(tmp_path / "nope"), "--library", str(tmp_path / "lib")]) == 2
