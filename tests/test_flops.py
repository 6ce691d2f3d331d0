"""`design.complexity` counts what PyTorch counts in the network `d2l.anynet` builds.

complexity is analytic: multiply-adds of the convolutions and the dense layer
('flops') and the elements those layers output ('acts'). Here both are compared with
PyTorch's own counts of one forward pass, for networks sampled from several design
spaces: `FlopCounterMode` (two FLOPs per multiply-add of a convolution or matrix
product), and the outputs of those operations as they run.
"""
import numpy as np
import pytest

from d2lsupport import design

# (design space, seed of its sample, image size, SE ratio: 0.25 makes a RegNetY); 33 px
# is odd, so every strided layer rounds its output size up
NETWORKS = [('A', 0, 28, 0.0), ('E', 2, 33, 0.0), ('RegNetX', 3, 28, 0.0),
            ('RegNetX', 4, 28, 0.25)]


@pytest.fixture(scope='module')
def torch(framework):
    """PyTorch, where it is the framework under test."""
    if framework != 'pytorch':
        pytest.skip("compares with PyTorch's own counters")
    import torch
    return torch


def counted_flops(model, x):
    """FLOPs of `model(x)` by PyTorch's FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops()


def counted_outputs(model, x):
    """Elements output by the convolutions and matrix products of `model(x)`, seen
    as the operations run. (Hooks on the Conv2d and Linear modules would miss the
    squeeze-and-excitation unit, which calls F.conv2d itself.)"""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    aten = torch.ops.aten
    counted = {aten.convolution, aten.addmm, aten.mm}
    total = 0

    class Outputs(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            nonlocal total
            out = func(*args, **(kwargs or {}))
            if func.overloadpacket in counted:
                total += out.numel()
            return out

    with Outputs():
        model(x)
    return total


@pytest.mark.parametrize('space, seed, image_size, se_ratio', NETWORKS)
def test_complexity_matches_pytorchs_counts(torch, d2l, space, seed, image_size, se_ratio):
    config = design.sample_config(space, np.random.default_rng(seed)).with_se_ratio(se_ratio)
    expected = design.complexity(config, image_size=image_size)
    model = d2l.anynet(config)
    model.eval()
    x = torch.zeros(1, 1, image_size, image_size)
    with torch.no_grad():
        model(x)   # sizes the lazy layers, so that the counted passes only compute
        counted = {'flops': counted_flops(model, x) / 2, 'acts': counted_outputs(model, x)}
    assert counted == {'flops': expected['flops'], 'acts': expected['acts']}, config
