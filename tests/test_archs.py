"""Architectures: reference key layout, detection from bare state dicts, checkerboard-free init."""

import pytest
import torch

from imgtrans.archs import (
    ARCHS,
    SRVGG,
    DnCNN,
    FFDNet,
    NLayerDiscriminator,
    ResnetGenerator,
    SRGANDiscriminator,
    SRResNet,
    get_arch,
)
from imgtrans.archs.cyclegan import detect_resnet_generator, normalize_cyclegan_keys
from imgtrans.archs.dncnn import detect_dncnn
from imgtrans.archs.ffdnet import detect_ffdnet
from imgtrans.archs.srresnet import detect_srresnet
from imgtrans.archs.srvgg import detect_srvgg


def test_registry_is_explicit_and_ordered():
    assert [a.name for a in ARCHS] == ["cyclegan_resnet", "srresnet", "dncnn", "ffdnet", "srvgg"]
    assert {a.task for a in ARCHS} == {"style", "sr", "denoise"}
    with pytest.raises(KeyError, match="known: cyclegan_resnet"):
        get_arch("nope")


def test_resnet_generator_has_reference_keys():
    keys = set(ResnetGenerator(ngf=64, n_blocks=9).state_dict())
    # the reference netG layout: c7 at model.1, downs at model.4/7, blocks at 10..18, ups at 19/22, out at 26
    for key in ["model.1.weight", "model.4.weight", "model.7.weight", "model.10.conv_block.1.weight",
                "model.18.conv_block.5.weight", "model.19.weight", "model.22.weight", "model.26.weight"]:
        assert key in keys
    assert not any("running" in k for k in keys)


@pytest.mark.parametrize("ngf,blocks", [(64, 9), (32, 6), (8, 2)])
def test_resnet_generator_detected(ngf, blocks):
    sd = ResnetGenerator(ngf=ngf, n_blocks=blocks).state_dict()
    hp = detect_resnet_generator(sd)
    assert hp == {"in_ch": 3, "out_ch": 3, "ngf": ngf, "n_blocks": blocks, "n_down": 2, "affine": False,
                  "use_dropout": False, "upsample": "deconv"}


def test_resize_upsampling_generator_detected_and_loaded():
    ref = ResnetGenerator(ngf=8, n_blocks=2, upsample="resize")
    hp = detect_resnet_generator(ref.state_dict())
    assert hp["upsample"] == "resize" and hp["ngf"] == 8 and hp["n_blocks"] == 2
    ResnetGenerator(**hp).load_state_dict(ref.state_dict(), strict=True)
    assert ref(torch.rand(1, 3, 36, 20) * 2 - 1).shape == (1, 3, 36, 20)


def test_resize_upsampling_has_no_checkerboard_where_deconv_does():
    """On a flat feature map, nearest x2 + conv gives a flat output (away from the border); the
    stride-2 transposed conv gives a period-2 pattern: the checkerboard users complain about."""
    from imgtrans.archs.cyclegan import _upsampler

    torch.manual_seed(0)
    flat = torch.ones(1, 4, 8, 8)
    with torch.no_grad():
        resize = _upsampler(4, 2, "resize")(flat)[..., 2:-2, 2:-2]
        deconv = _upsampler(4, 2, "deconv")(flat)[..., 2:-2, 2:-2]
    assert resize.shape == deconv.shape
    assert float(resize.std(dim=(2, 3)).max()) < 1e-6
    assert float(deconv.std(dim=(2, 3)).min()) > 1e-3


def test_input_skip_generator_learns_a_change_to_its_input():
    """``input_skip``: the same weights as without it; with the last conv at zero the generator is
    the identity (up to the +-0.999 clamp), and a change before the tanh stays in range; it refuses
    a channel count change."""
    g = ResnetGenerator(ngf=8, n_blocks=2, upsample="resize", input_skip=True)
    assert set(g.state_dict()) == set(ResnetGenerator(ngf=8, n_blocks=2, upsample="resize").state_dict())
    x = torch.rand(1, 3, 20, 28) * 2 - 1
    with torch.no_grad():
        last = g.model[-1]
        last.weight.zero_(), last.bias.zero_()
        assert float((g(x) - x.clamp(-0.999, 0.999)).abs().max()) < 1e-5
        last.bias.fill_(0.5)  # a change added before the tanh: brighter everywhere, still in range
        y = g(x)
    assert bool((y > x.clamp(-0.999, 0.999)).all()) and float(y.abs().max()) < 1.0
    with pytest.raises(ValueError, match="input_skip"):
        ResnetGenerator(in_ch=3, out_ch=1, ngf=8, n_blocks=2, input_skip=True)


def test_input_skip_survives_a_model_file(tmp_path):
    """The weights alone cannot tell a skip generator: its model file's hyper-parameters carry it."""
    from imgtrans.weights import load_model, save_model

    torch.manual_seed(0)
    hp = {"ngf": 8, "n_blocks": 2, "upsample": "resize", "input_skip": True}
    g = ResnetGenerator(**hp).eval()
    path = save_model(tmp_path / "skip.safetensors", g, "cyclegan_resnet", hp, {"id": "skip", "name": "Skip"})
    loaded = load_model(path)
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(loaded.module(x), g(x), atol=1e-6)


def test_third_party_cyclegan_layouts_normalise():
    """vintagify-style (affine IN, `.block.`) and old reference files (IN running stats) load."""
    ref = ResnetGenerator(ngf=8, n_blocks=2, affine=True)
    sd = {k.replace(".conv_block.", ".block."): v for k, v in ref.state_dict().items()}
    sd["model.2.running_mean"] = torch.zeros(8)
    sd["model.2.running_var"] = torch.ones(8)
    sd = {"module." + k: v for k, v in sd.items()}
    norm = normalize_cyclegan_keys(sd)
    hp = detect_resnet_generator(norm)
    assert hp["affine"] is True and hp["n_blocks"] == 2 and hp["ngf"] == 8
    model = ResnetGenerator(**hp)
    model.load_state_dict(norm, strict=True)


def test_dropout_generator_detected():
    sd = ResnetGenerator(ngf=8, n_blocks=3, use_dropout=True).state_dict()
    assert detect_resnet_generator(sd)["use_dropout"] is True


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_srresnet_shapes_and_detection(scale):
    model = SRResNet(nf=8, n_blocks=3, scale=scale).eval()
    out = model(torch.rand(1, 3, 11, 13))
    assert out.shape == (1, 3, 11 * scale, 13 * scale)
    assert detect_srresnet(model.state_dict()) == {"in_ch": 3, "out_ch": 3, "nf": 8, "n_blocks": 3, "scale": scale}


def test_fresh_srresnet_has_no_checkerboard():
    """ICNR makes each PixelShuffle start as nearest-neighbour upsampling of one conv: on a flat
    input every 2x2 output block is identical, so no checkerboard comes from the initial state."""
    torch.manual_seed(0)
    model = SRResNet(nf=8, n_blocks=1, scale=2).eval()
    up = model.upsample[:2]  # conv + PixelShuffle
    feat = torch.rand(1, 8, 6, 6)
    out = up(feat)
    blocks = out.unfold(2, 2, 2).unfold(3, 2, 2)  # (1,C,6,6,2,2)
    assert torch.allclose(blocks, blocks[..., :1, :1].expand_as(blocks), atol=1e-6)


@pytest.mark.parametrize("scale,in_ch", [(1, 3), (2, 3), (3, 3), (4, 3), (4, 1)])
def test_srvgg_shapes_and_detection(scale, in_ch):
    model = SRVGG(in_ch=in_ch, out_ch=in_ch, nf=8, n_conv=3, scale=scale).eval()
    x = torch.rand(1, in_ch, 11, 13)
    out = model(x)
    assert out.shape == (1, in_ch, 11 * scale, 13 * scale)
    assert detect_srvgg(model.state_dict()) == {"in_ch": in_ch, "out_ch": in_ch, "nf": 8, "n_conv": 3, "scale": scale}
    assert get_arch("srvgg").receptive_radius({"n_conv": 3}) == 5


def test_fresh_srvgg_starts_near_bilinear_without_checkerboard():
    """The ICNR-initialised, scaled-down tail: the residual over bilinear upsampling is small and, on
    a flat input, the same in every scale x scale block."""
    torch.manual_seed(0)
    model = SRVGG(nf=8, n_conv=2, scale=4).eval()
    x = torch.rand(1, 3, 12, 12)
    base = torch.nn.functional.interpolate(x, scale_factor=4, mode="bilinear", align_corners=False)
    with torch.no_grad():
        out = model(x)
        assert (out - base).abs().mean() < 0.05
        flat = model(torch.full((1, 3, 8, 8), 0.5)) - 0.5
    blocks = flat.unfold(2, 4, 4).unfold(3, 4, 4)
    assert torch.allclose(blocks, blocks[..., :1, :1].expand_as(blocks), atol=1e-6)


def test_deep_fresh_srvgg_passes_its_signal_through():
    """Plain layers initialised for PReLU keep the features' scale through a deep body (PyTorch's default
    init lets the signal vanish and the network never trains); so the head gets a real gradient."""
    torch.manual_seed(0)
    model = SRVGG(nf=16, n_conv=24, scale=4)
    x = torch.rand(2, 3, 24, 24)
    with torch.no_grad():
        feat = model.head_act(model.head(x))
        ratio = float(model.body(feat).std() / feat.std())
    assert 0.2 < ratio < 5, ratio
    model(x).square().mean().backward()
    assert float(model.head.weight.grad.abs().mean()) > 1e-6  # 2e-13 with PyTorch's default init


@pytest.mark.parametrize("channels,noise_map,bn", [(3, False, True), (1, False, False), (3, True, True)])
def test_dncnn_variants(channels, noise_map, bn):
    model = DnCNN(channels=channels, nf=8, depth=5, bn=bn, noise_map=noise_map).eval()
    x = torch.rand(2, channels, 12, 10)
    out = model(x, 0.1) if noise_map else model(x)
    assert out.shape == x.shape
    assert detect_dncnn(model.state_dict()) == {"channels": channels, "nf": 8, "depth": 5, "bn": bn,
                                                "noise_map": noise_map}


@pytest.mark.parametrize("channels,noise_map,bn", [(3, True, True), (1, True, False), (3, False, True)])
def test_ffdnet_variants(channels, noise_map, bn):
    """FFDNet works on the 2x2 pixel-unshuffled image: 4C (+1 noise plane) inputs to its first conv, 4C
    outputs from its last; a per-image sigma reaches each image; odd sizes are refused (the engine pads)."""
    model = FFDNet(channels=channels, nf=8, depth=5, bn=bn, noise_map=noise_map).eval()
    assert model.body[0].in_channels == 4 * channels + noise_map and model.body[-1].out_channels == 4 * channels
    x = torch.rand(2, channels, 12, 10)
    out = model(x, torch.tensor([0.05, 0.2])) if noise_map else model(x)
    assert out.shape == x.shape
    if noise_map:  # image k gets sigma k
        assert torch.allclose(out[1:], model(x[1:], 0.2), atol=1e-6)
        assert not torch.allclose(out[1:], model(x[1:], 0.05), atol=1e-4)
    assert detect_ffdnet(model.state_dict()) == {"channels": channels, "nf": 8, "depth": 5, "bn": bn,
                                                 "noise_map": noise_map}
    with pytest.raises(ValueError, match="even"):
        model(torch.rand(1, channels, 11, 10), 0.1)


def test_ffdnet_receptive_radius_is_exact():
    """A change to one input pixel reaches output pixels at most 2 depth + 1 away, and that far."""
    spec = get_arch("ffdnet")
    model = FFDNet(nf=4, depth=3, bn=False).eval()
    radius = spec.receptive_radius({"depth": 3})
    x = torch.rand(1, 3, 32, 32)
    y = x.clone()
    y[:, :, 15, 15] += 1.0
    with torch.no_grad():
        changed = (model(y, 0.1) - model(x, 0.1)).abs().sum(dim=(0, 1)) > 0
    rows, cols = changed.nonzero(as_tuple=True)
    assert max((rows - 15).abs().max(), (cols - 15).abs().max()) == radius == 7


def test_noise_map_model_needs_sigma():
    for cls in (DnCNN, FFDNet):
        with pytest.raises(ValueError, match="noise level"):
            cls(nf=8, depth=3, noise_map=True)(torch.rand(1, 3, 8, 8))


def test_detectors_reject_other_families():
    sr = SRResNet(nf=8, n_blocks=2, scale=2).state_dict()
    dn = DnCNN(nf=8, depth=4).state_dict()
    gan = ResnetGenerator(ngf=8, n_blocks=2).state_dict()
    assert detect_resnet_generator(sr) is None and detect_resnet_generator(dn) is None
    assert detect_srresnet(gan) is None and detect_srresnet(dn) is None
    assert detect_dncnn(gan) is None and detect_dncnn(sr) is None
    # DnCNN and FFDNet share hyper-parameters; a 12-channel noise-map DnCNN even has FFDNet's conv shapes
    ffd = FFDNet(nf=8, depth=4).state_dict()
    lookalike = DnCNN(channels=12, nf=8, depth=4, noise_map=True).state_dict()
    assert detect_dncnn(ffd) is None and detect_ffdnet(lookalike) is None
    assert all(detect_ffdnet(sd) is None for sd in (sr, dn, gan))
    assert [a.name for a in ARCHS if a.detect(a.normalize_keys(ffd)) is not None] == ["ffdnet"]
    vgg = SRVGG(nf=8, n_conv=3, scale=2).state_dict()
    assert all(detect(vgg) is None for detect in (detect_resnet_generator, detect_srresnet, detect_dncnn))
    assert all(detect_srvgg(other) is None for other in (sr, dn, gan, ffd)) and detect_ffdnet(vgg) is None
    assert [a.name for a in ARCHS if a.detect(a.normalize_keys(vgg)) is not None] == ["srvgg"]
    # Real-ESRGAN's own compact layout (everything under body., nearest base) is not ours: spandrel loads it
    theirs = {f"body.{i}.weight": v for i, v in enumerate(vgg.values())}
    assert detect_srvgg(theirs) is None


def test_bare_srvgg_state_dict_loads_as_srvgg(tmp_path):
    from safetensors.torch import save_file

    from imgtrans.weights import load_model

    model = SRVGG(nf=8, n_conv=3, scale=4).eval()
    save_file(model.state_dict(), str(tmp_path / "bare.safetensors"))
    loaded = load_model(tmp_path / "bare.safetensors")
    assert loaded.arch == "srvgg" and loaded.scale == 4 and loaded.receptive_radius == 5
    x = torch.rand(1, 3, 10, 9)
    with torch.no_grad():
        assert torch.equal(loaded.module(x), model(x))


def test_discriminators():
    assert NLayerDiscriminator(ndf=8)(torch.rand(1, 3, 70, 70)).shape == (1, 1, 6, 6)
    assert NLayerDiscriminator(ndf=8, spectral=True, norm="none")(torch.rand(2, 3, 64, 64)).shape[0] == 2
    assert SRGANDiscriminator(nf=8)(torch.rand(2, 3, 48, 40)).shape == (2, 1)
