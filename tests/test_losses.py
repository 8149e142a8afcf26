"""Loss values against hand-computed ones, and the custom gradients."""

import math

import torch

from clipgan.losses import clamp_with_grad, init_loss, prompt_loss, spherical_distance, tv_loss, vector_quantize


def test_spherical_distance_hand_values():
    x = torch.tensor([[1.0, 0.0]])
    y = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    # chord c -> 2 * arcsin(c / 2)^2: 0, sqrt(2) -> 2 (pi/4)^2, 2 -> 2 (pi/2)^2
    expected = torch.tensor([[0.0, math.pi**2 / 8, math.pi**2 / 2]])
    assert torch.allclose(spherical_distance(x, y), expected, atol=1e-6)


def test_spherical_distance_is_pairwise():
    x, y = torch.nn.functional.normalize(torch.randn(5, 8), dim=1), torch.nn.functional.normalize(torch.randn(3, 8), dim=1)
    assert spherical_distance(x, y).shape == (5, 3)


def test_prompt_loss_weight_and_sign():
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    t = torch.tensor([[1.0, 0.0]])
    mean = (0 + math.pi**2 / 8) / 2
    assert math.isclose(prompt_loss(x, t, 2.0).item(), 2 * mean, rel_tol=1e-6)
    assert math.isclose(prompt_loss(x, t, -0.5).item(), -0.5 * mean, rel_tol=1e-6)


def test_prompt_loss_stop_keeps_value_and_stops_gradient():
    t = torch.tensor([[1.0, 0.0]])
    near = torch.nn.functional.normalize(torch.tensor([[1.0, 0.1]]), dim=1).requires_grad_(True)
    loss = prompt_loss(near, t, 1.0, stop=0.5)  # distance ~0.01 is below the stop
    assert math.isclose(loss.item(), spherical_distance(near, t).item(), rel_tol=1e-6)
    loss.backward()
    assert near.grad.abs().max() == 0
    far = torch.tensor([[0.0, 1.0]], requires_grad=True)
    prompt_loss(far, t, 1.0, stop=0.5).backward()
    assert far.grad.abs().max() > 0


def test_clamp_with_grad_passes_only_inward_gradients():
    x = torch.tensor([-0.5, 0.5, 1.5], requires_grad=True)
    y = clamp_with_grad(x, 0.0, 1.0)
    assert y.tolist() == [0.0, 0.5, 1.0]
    # descent moves x by -grad: +1 at -0.5 pushes further out (dropped), -1 pulls it in (kept)
    y.backward(torch.tensor([1.0, 1.0, 1.0]))
    assert x.grad.tolist() == [0.0, 1.0, 1.0]
    x.grad = None
    clamp_with_grad(x, 0.0, 1.0).backward(torch.tensor([-1.0, -1.0, -1.0]))
    assert x.grad.tolist() == [-1.0, -1.0, 0.0]


def test_vector_quantize_snaps_to_nearest_code_with_straight_through_gradient():
    codebook = torch.tensor([[0.0, 0.0], [1.0, 1.0], [-1.0, 2.0]])
    z = torch.tensor([[[[0.1, 0.9], [-0.8, 0.2]], [[0.2, 1.2], [1.9, -0.1]]]], requires_grad=True)  # (1, 2, 2, 2)
    q = vector_quantize(z, codebook)
    cells = q.detach().movedim(1, -1).reshape(-1, 2).tolist()
    assert cells == [[0.0, 0.0], [1.0, 1.0], [-1.0, 2.0], [0.0, 0.0]]
    weight = torch.randn_like(q)
    (q * weight).sum().backward()
    assert torch.equal(z.grad, weight)  # gradient passes as if quantization were the identity


def test_init_loss_pulls_towards_start_not_zero():
    z0 = torch.full((1, 2, 2, 2), 3.0)
    assert init_loss(z0.clone(), z0, 1.0).item() == 0.0
    z = z0 + 1.0
    assert math.isclose(init_loss(z, z0, 0.5).item(), 1.0 * 0.5 / 2)


def test_tv_loss_hand_value():
    image = torch.tensor([[[[0.0, 1.0], [0.0, 1.0]]]])  # horizontal steps of 1, no vertical change
    assert math.isclose(tv_loss(image, 2.0).item(), 2.0 * (1.0 + 0.0))
