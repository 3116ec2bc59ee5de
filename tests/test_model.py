"""Shake-Shake-26 2x32d: size, forward/backward, S-S-I shake, head remapping."""
import pytest
import torch

from helpers.method.model import ShakeShake, ShakeShakeNet, count_parameters, shake, shake_shake_26_2x32d
from helpers.method.stages import GROW_9_TO_10
from helpers.method.samplers import WITHOUT_CLASS0


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return shake_shake_26_2x32d()


def test_parameter_counts():
    assert count_parameters(shake_shake_26_2x32d(in_channels=1, num_classes=10)) == 2_922_874
    assert count_parameters(shake_shake_26_2x32d(in_channels=3, num_classes=10)) == 2_923_162


def test_depth_must_be_6n_plus_2():
    with pytest.raises(ValueError, match="depth must be 6n\\+2"):
        ShakeShakeNet(depth=25)


def test_forward_backward_and_features(model):
    x = torch.randn(4, 1, 16, 16)
    model.train()
    out = model(x)
    assert out.shape == (4, 10)
    out.logsumexp(1).mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    model.zero_grad(set_to_none=True)
    model.eval()
    with torch.no_grad():
        assert model.features(x).shape == (4, 128)
        assert model.feature_dim == 128


def test_eval_is_deterministic_and_train_shakes(model):
    x = torch.randn(4, 1, 16, 16)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
        model.train()
        a, b = model(x), model(x)
    model.eval()
    assert not torch.allclose(a, b)


def test_shake_shake_function_uses_alpha_forward_and_beta_backward():
    x1 = torch.randn(3, 2, 4, 4, requires_grad=True)
    x2 = torch.randn(3, 2, 4, 4, requires_grad=True)
    alpha = torch.tensor([0.1, 0.5, 0.9]).view(3, 1, 1, 1)
    beta = torch.tensor([0.7, 0.2, 0.4]).view(3, 1, 1, 1)
    out = ShakeShake.apply(x1, x2, alpha, beta)
    torch.testing.assert_close(out, alpha * x1 + (1 - alpha) * x2)
    out.sum().backward()
    torch.testing.assert_close(x1.grad, beta.expand_as(x1))
    torch.testing.assert_close(x2.grad, (1 - beta).expand_as(x2))


def test_shake_draws_per_image_and_independent_backward():
    torch.manual_seed(1)
    x1 = torch.ones(6, 2, 3, 3, requires_grad=True)
    x2 = torch.zeros(6, 2, 3, 3, requires_grad=True)
    out = shake(x1, x2, training=True)
    alpha = out[:, :1, :1, :1]
    assert torch.equal(out, alpha.expand_as(out))                # one alpha per image ...
    assert len(torch.unique(alpha)) == 6                          # ... different images, different alphas
    out.sum().backward()
    beta = x1.grad[:, :1, :1, :1]
    assert torch.equal(x1.grad, beta.expand_as(x1.grad))
    torch.testing.assert_close(x2.grad, 1 - x1.grad)
    assert not torch.allclose(beta, alpha)                        # backward mix is not the forward mix
    # Eval: plain average.
    torch.testing.assert_close(shake(x1, x2, training=False), torch.full_like(x1, 0.5))


def test_remap_head_drops_class0():
    torch.manual_seed(0)
    m = shake_shake_26_2x32d()
    with torch.no_grad():
        m.fc.bias.copy_(torch.arange(10.0))
    old_w, old_b = m.fc.weight.detach().clone(), m.fc.bias.detach().clone()
    m.remap_head(9, {c: c - 1 for c in WITHOUT_CLASS0})
    assert m.num_classes == 9 and m.arch["num_classes"] == 9
    torch.testing.assert_close(m.fc.weight.detach(), old_w[1:])
    torch.testing.assert_close(m.fc.bias.detach(), old_b[1:])


def test_remap_head_grows_9_to_10_keeping_trained_rows():
    torch.manual_seed(0)
    m = ShakeShakeNet(num_classes=9)
    with torch.no_grad():
        m.fc.bias.copy_(torch.arange(1.0, 10.0))
    old_w, old_b = m.fc.weight.detach().clone(), m.fc.bias.detach().clone()
    m.remap_head(10, GROW_9_TO_10)
    assert m.num_classes == 10 and m.arch["num_classes"] == 10
    torch.testing.assert_close(m.fc.weight.detach()[1:], old_w)
    torch.testing.assert_close(m.fc.bias.detach()[1:], old_b)
    assert m.fc.bias[0].item() == 0.0                                # new class-0 row starts fresh
    assert not any(torch.equal(m.fc.weight[0], row) for row in old_w)
    x = torch.randn(2, 1, 16, 16)
    m.eval()
    assert m(x).shape == (2, 10)


def test_normed_classifier_and_reset():
    m = ShakeShakeNet(normed_classifier=True)
    assert m.fc.bias is None
    m.remap_head(9, {c: c - 1 for c in WITHOUT_CLASS0})
    assert type(m.fc).__name__ == "NormedLinear" and m.num_classes == 9
    m.eval()
    with torch.no_grad():
        out = m(torch.randn(2, 1, 16, 16))
    assert out.abs().max() <= 1 + 1e-5                              # cosine logits
    before = m.fc.weight.detach().clone()
    m.reset_classifier()
    assert not torch.equal(before, m.fc.weight)
