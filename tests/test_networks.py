import pytest
import torch
from torch import nn

from padream.networks import Encoder, Generator, build_networks
from padream.rng import generator_for


def convs(module: nn.Module, kind) -> list:
    return [m for m in module.modules() if isinstance(m, kind)]


def test_shapes_and_ranges():
    encoder, generator = build_networks(12, 4, generator_for(0, "init"))
    x = torch.rand(5, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    z, logit = encoder(x)
    assert z.shape == (5, 12)
    assert logit.shape == (5,)
    assert torch.allclose(encoder.encode(x), z, rtol=1e-6, atol=1e-9)
    assert torch.allclose(encoder.discriminate(x), logit, rtol=1e-6, atol=1e-9)
    images = generator(torch.randn(5, 12, generator=torch.Generator().manual_seed(1)) * 3)
    assert images.shape == (5, 3, 32, 32)
    assert images.abs().max() < 1


def test_default_sizes_follow_the_paper():
    encoder = Encoder()
    trunk = convs(encoder.trunk, nn.Conv2d)
    assert [c.in_channels for c in trunk] == [3, 64, 128]
    assert [c.out_channels for c in trunk] == [64, 128, 256]
    for conv in trunk:
        assert conv.kernel_size == (4, 4) and conv.stride == (2, 2) and conv.padding == (1, 1)
    relus = [m for m in encoder.trunk if isinstance(m, nn.LeakyReLU)]
    assert len(relus) == 3 and all(r.negative_slope == 0.2 for r in relus)
    for head, out in ((encoder.latent_head, 256), (encoder.discriminator_head, 1)):
        assert head.in_channels == 256 and head.out_channels == out
        assert head.kernel_size == (4, 4) and head.stride == (1, 1) and head.padding == (0, 0)
    assert encoder.latent_dim == 256

    generator = Generator()
    layers = convs(generator, nn.ConvTranspose2d)
    assert [c.in_channels for c in layers] == [256, 256, 128, 64]
    assert [c.out_channels for c in layers] == [256, 128, 64, 3]
    assert all(c.kernel_size == (4, 4) for c in layers)
    assert (layers[0].stride, layers[0].padding) == ((1, 1), (0, 0))
    assert all((c.stride, c.padding) == ((2, 2), (1, 1)) for c in layers[1:])
    assert isinstance(generator.net[-1], nn.Tanh)
    assert sum(isinstance(m, nn.LeakyReLU) for m in generator.net) == 3


def test_default_networks_map_between_32x32_images_and_256_latents():
    encoder, generator = Encoder(), Generator()
    z, logit = encoder(torch.zeros(2, 3, 32, 32))
    assert z.shape == (2, 256) and logit.shape == (2,)
    assert generator(z).shape == (2, 3, 32, 32)


def test_dcgan_initialisation():
    encoder, generator = build_networks(256, 64, generator_for(0, "init"))
    layers = convs(encoder, nn.Conv2d) + convs(generator, nn.ConvTranspose2d)
    assert len(layers) == 9
    for layer in layers:
        weight = layer.weight.detach()
        assert abs(weight.std().item() - 0.02) < 0.0015, layer
        assert abs(weight.mean().item()) < 0.002, layer
        assert torch.count_nonzero(layer.bias) == 0
    assert not any(p.requires_grad is False for p in encoder.parameters())


def test_same_seed_same_weights_and_different_seed_different_weights():
    a = build_networks(8, 4, generator_for(3, "init"))
    torch.randn(100)  # the global RNG must not matter
    b = build_networks(8, 4, generator_for(3, "init"))
    c = build_networks(8, 4, generator_for(4, "init"))
    for net_a, net_b, net_c in zip(a, b, c):
        sa, sb, sc = net_a.state_dict(), net_b.state_dict(), net_c.state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
        assert not all(torch.equal(sa[k], sc[k]) for k in sa)


@pytest.mark.parametrize("latent_dim, base_channels", [(8, 4), (16, 8)])
def test_parameter_count_scales_with_size(latent_dim, base_channels):
    encoder, generator = build_networks(latent_dim, base_channels, generator_for(0, "init"))
    c = base_channels
    encoder_params = (3 * c * 16 + c) + (c * 2 * c * 16 + 2 * c) + (2 * c * 4 * c * 16 + 4 * c) \
        + (4 * c * latent_dim * 16 + latent_dim) + (4 * c * 16 + 1)
    assert sum(p.numel() for p in encoder.parameters()) == encoder_params
    generator_params = (latent_dim * 4 * c * 16 + 4 * c) + (4 * c * 2 * c * 16 + 2 * c) \
        + (2 * c * c * 16 + c) + (c * 3 * 16 + 3)
    assert sum(p.numel() for p in generator.parameters()) == generator_params
