"""TTA views and prediction, the scores, and the LDAM-DRW loss."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import chips
from helpers.method import inference, metrics, tta
from helpers.method.losses import LDAMLoss
from helpers.method.model import shake_shake_26_2x32d


def test_views_shapes_and_content():
    x = torch.arange(2 * 16 * 16, dtype=torch.float32).view(2, 1, 16, 16)
    for k in (1, 2, 3):
        v = tta.views(x, k)
        assert len(v) == k and all(t.shape == x.shape for t in v)
    one, flip, shift = tta.views(x, 3)
    assert torch.equal(one, x)
    assert torch.equal(flip, x.flip(3))                      # azimuth (left-right) flip only
    assert torch.equal(shift[..., 1:, 1:], x[..., :-1, :-1])  # one-pixel shift at 16 px
    for k in (0, 4):
        with pytest.raises(ValueError, match="TTA views must be 1, 2 or 3"):
            tta.views(x, k)


@pytest.fixture(scope="module")
def model_and_data():
    torch.manual_seed(0)
    return shake_shake_26_2x32d().eval(), chips(1, transform="eval")


def test_k1_is_plain_softmax(model_and_data):
    model, data = model_and_data
    probs = inference.predict(model, data, k=1, device="cpu")
    with torch.no_grad():
        plain = F.softmax(model(torch.stack([data[i][0] for i in range(len(data))])), 1)
    torch.testing.assert_close(probs, plain)
    assert probs.shape == (10, 10)


def test_k3_averages_views(model_and_data):
    model, data = model_and_data
    probs = inference.predict(model, data, k=3, device="cpu", batch_size=4)
    x = torch.stack([data[i][0] for i in range(len(data))])
    with torch.no_grad():
        expected = torch.stack([F.softmax(model(v), 1) for v in tta.views(x, 3)]).mean(0)
    torch.testing.assert_close(probs, expected)
    torch.testing.assert_close(probs.sum(1), torch.ones(10))


def test_features(model_and_data):
    model, data = model_and_data
    assert inference.features(model, data, device="cpu").shape == (10, 128)


def test_summary_on_an_imbalanced_example():
    # 8 of class 0 (all right), 2 of class 1 (both wrong: predicted 0).
    y_true = [0] * 8 + [1] * 2
    y_pred = [0] * 10
    s = metrics.summary(y_true, y_pred, num_classes=2)
    assert s["top1"] == pytest.approx(0.8)
    assert s["balanced_top1"] == pytest.approx(0.5)          # mean per-class recall: (1 + 0) / 2
    assert s["per_class"] == [1.0, 0.0]
    assert s["predicted_share"] == [1.0, 0.0]
    assert s["distance_from_uniform"] == pytest.approx(0.5)


def test_summary_ten_classes_and_confusion():
    y = np.repeat(np.arange(10), 3)
    s = metrics.summary(y, y)
    assert s["balanced_top1"] == s["top1"] == 1.0
    assert s["distance_from_uniform"] == pytest.approx(0.0)
    assert len(s["per_class"]) == len(s["predicted_share"]) == 10
    c = metrics.confusion([0, 0, 1], [0, 1, 1], num_classes=3)
    assert c.shape == (3, 3)
    np.testing.assert_allclose(c[0], [0.5, 0.5, 0])


def test_ldam_margins_and_drw_weights():
    counts = [100, 10, 1]
    loss = LDAMLoss(counts, max_margin=0.5, scale=30.0)
    m = loss.margins.numpy()
    assert m.max() == pytest.approx(0.5) and m.argmax() == 2 and m[0] < m[1] < m[2]   # rarer class, larger margin
    logits = torch.zeros(3, 3)
    target = torch.tensor([0, 1, 2])
    adjusted = logits.clone()
    adjusted[torch.arange(3), target] -= loss.margins
    torch.testing.assert_close(loss(logits, target), F.cross_entropy(30 * adjusted, target))
    # Cao et al.'s margins C / n^(1/4), scaled so the largest is 0.5, worked by hand: [0.158, 0.281, 0.5].
    np.testing.assert_allclose(m, [0.5 / 100 ** 0.25, 0.5 / 10 ** 0.25, 0.5], rtol=1e-6)
    np.testing.assert_allclose(m, [0.158, 0.281, 0.5], atol=5e-4)
    # DRW switches at a share of the *steps*, never inside the warm-up.
    loss.set_step(79, 100, counts, start_fraction=0.8, beta=0.9999, warmup=5)
    assert torch.equal(loss.weight, torch.ones(3))
    loss.set_step(3, 4, counts, start_fraction=0.5, beta=0.9999, warmup=5)      # 0.5 x 4 = step 2, but warm-up lasts 5
    assert torch.equal(loss.weight, torch.ones(3))
    loss.set_step(80, 100, counts, start_fraction=0.8, beta=0.9999, warmup=5)
    w = loss.weight.numpy()
    assert w[0] < w[1] < w[2] and w.sum() == pytest.approx(3)
