"""Training the family on the procedural data, stage by stage, resumable and seeded.

Stages (each writes a checkpoint folder with a JSON card; a finished stage whose card matches
its recipe is skipped, an interrupted one resumes from its last saved step):

1. `autoencoder`: the per-frame `AutoencoderKL` (reconstruction + small KL).
2. `t2i-<schedule>`: the T2I U-Net on single frames, once per schedule.
3. `video-...`: the video U-Net inflated from the T2I, one per ablation row (docs/method.md):
   factorized vs direct, zero-SNR vs standard, frozen vs fine-tuned spatial, multi-stage
   (low resolution and higher fps first, then target; same number of steps) vs single-stage,
   and HQ fine-tuning (extra steps on the high-motion subset) vs not.
4. `interpolation`: temporal layers only, 8 → 29 frames.
5. `classifier`: the video classifier behind the automatic metrics (metrics.py).
6. `temporal-decoder`: steadies a video's latents before per-frame decoding, on the training
   videos' latents (temporal_decoding.py).

Every batch, noise draw and timestep comes from a generator seeded by (seed, stage, step), so a
resumed run draws what an uninterrupted one would have.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import time
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from . import checkpoints, temporal_decoding
from .data import make_video_set
from .models import SHIPPED, ModelSize, build_autoencoder, build_t2i, inflate_t2i, set_trainable
from .schedules import training_scheduler, training_target

DROP_TEXT = 0.1
DROP_IMAGE = 0.1
HQ_MIN_SPEED = 0.46


@dataclass(frozen=True)
class VideoRecipe:
    mode: str = "factorized"
    schedule: str = "zero_snr"
    spatial: str = "frozen"
    multistage: bool = False
    hq_finetune: bool = False

    @property
    def name(self) -> str:
        return checkpoints.video_checkpoint_name(**asdict(self))


# The ablation rows (docs/method.md), each against the default (first) recipe.
ABLATION_RECIPES: tuple[VideoRecipe, ...] = (
    VideoRecipe(),
    VideoRecipe(mode="direct"),
    VideoRecipe(hq_finetune=True),
    VideoRecipe(multistage=True),
    VideoRecipe(spatial="finetuned"),
    VideoRecipe(schedule="standard"),
    # The other baseline of (b): DDPM's linear betas (the product brief's "zero-SNR vs linear").
    VideoRecipe(schedule="linear"),
)


@dataclass(frozen=True)
class TrainingPlan:
    seed: int = 0
    size: ModelSize = SHIPPED
    image_size: int = 32
    frames: int = 8
    videos: int = 3000
    ae_steps: int = 1000
    ae_batch: int = 16
    ae_lr: float = 2e-3
    # Decoder-only refinement afterwards: the encoder (and so every latent) stays fixed.
    decoder_steps: int = 1500
    # 500 steps drew blobs (shape right on 44% of held-out prompts), 10,000 the shape (86%;
    # benchmarks/bench_t2i_shape.py); the frozen video models take their spatial layers from it.
    t2i_steps: int = 10000
    t2i_batch: int = 32
    t2i_lr: float = 1e-3
    # 200 steps learned content but no motion (held-out motion at chance); 1,000 is what the
    # CPU budget allowed for every ablation row alike.
    video_steps: int = 1000
    video_batch: int = 8
    video_lr: float = 1e-3
    # Multi-stage: this fraction of the same step budget at half resolution, twice the fps.
    low_res_fraction: float = 0.6
    hq_steps: int = 60
    interp_videos: int = 600
    interp_steps: int = 60
    interp_batch: int = 2
    # How its card tells the sampler to run it (docs/interpolation.md); measured, not trained:
    # from a start this close to the blend of the given frames, without text guidance, it boiled
    # least of the settings that still run the model (bench_ablation_metrics --interpolation).
    interp_strength: float = 0.1
    interp_guidance_text: float = 1.0
    classifier_steps: int = 1000
    # The temporal decoder (temporal_decoding.py): noise up to 0.6 took the default's flicker
    # from 2.65x to 1.89x the real videos' at a reconstruction error of 4.08 against 3.89;
    # up to 2.0 to 1.80x at 4.70 (benchmarks/bench_temporal_decoding.py).
    temporal_steps: int = 2000
    temporal_batch: int = 32
    temporal_lr: float = 1e-3
    temporal_sigma: float = 0.6
    save_every: int = 100
    recipes: tuple[VideoRecipe, ...] = ABLATION_RECIPES
    schedules: tuple[str, ...] = field(default=("zero_snr", "standard", "linear"))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["size"] = self.size.to_dict()
        data["recipes"] = [asdict(r) for r in self.recipes]
        return data


def tiny_plan(seed: int = 0) -> TrainingPlan:
    """A plan that runs in seconds, for tests."""
    from .models import TINY

    return TrainingPlan(
        seed=seed,
        size=replace(TINY, cross_attention_dim=384),
        image_size=16,
        frames=4,
        videos=16,
        ae_steps=2,
        ae_batch=4,
        decoder_steps=1,
        t2i_steps=2,
        t2i_batch=4,
        video_steps=2,
        video_batch=2,
        hq_steps=1,
        interp_videos=4,
        interp_steps=1,
        interp_batch=1,
        classifier_steps=2,
        temporal_steps=2,
        temporal_batch=2,
        save_every=1,
        recipes=(VideoRecipe(),),
        schedules=("zero_snr",),
    )


class Trainer:
    def __init__(
        self,
        plan: TrainingPlan,
        *,
        out_dir: Path,
        state_dir: Path,
        device: str | None = None,
        progress: bool = True,
        log: Callable[[str], None] = print,
    ) -> None:
        import torch

        self.plan = plan
        self.out_dir = out_dir
        self.state_dir = state_dir
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.progress = progress
        self.log = log
        self._text: Any = None
        self._latents: dict[str, Any] = {}
        self._sets: dict[str, Any] = {}

    # -- data ---------------------------------------------------------------------------
    def video_set(self, kind: str) -> Any:
        p = self.plan
        if kind not in self._sets:
            if kind == "main":
                s = make_video_set(p.videos, seed=p.seed, size=p.image_size, frames=p.frames)
            elif kind == "low":
                # Lower resolution and a higher frame rate: the same frames over half the time.
                s = make_video_set(
                    p.videos,
                    seed=p.seed,
                    size=p.image_size // 2,
                    frames=p.frames,
                    time_span=0.5,
                )
            elif kind == "interp":
                frames = 4 * (p.frames - 1) + 1
                s = make_video_set(p.interp_videos, seed=p.seed, size=p.image_size, frames=frames)
            else:
                raise ValueError(kind)
            self._sets[kind] = s
        return self._sets[kind]

    def text_table(self, captions: tuple[str, ...]) -> tuple[Any, Any]:
        """Hidden states for every caption (computed once: the encoder stays frozen)."""
        import torch

        from .text import TextEncoder

        if self._text is None:
            self._text = TextEncoder(self.device)
        unique = sorted(set(captions))
        index = {c: i for i, c in enumerate(unique)}
        table = torch.cat([self._text(unique[i : i + 256]) for i in range(0, len(unique), 256)])
        ids = torch.tensor([index[c] for c in captions], device=self.device)
        return table[ids], self._text([""])[0]

    def latents(self, kind: str, vae: Any) -> Any:
        """(N, T, C, h, w) scaled latents of a video set (posterior means), cached on disk."""
        import torch

        if kind in self._latents:
            return self._latents[kind]
        cache = self.state_dir / f"latents-{kind}-{self._plan_key()}.pt"
        if cache.is_file():
            lat = torch.load(cache, map_location=self.device)
        else:
            videos = self.video_set(kind).videos
            n, t = videos.shape[:2]
            flat = videos.reshape(n * t, *videos.shape[2:])
            out = []
            with torch.no_grad():
                for i in range(0, len(flat), 256):
                    x = _to_pixels(flat[i : i + 256], self.device)
                    out.append(vae.encode(x).latent_dist.mean * vae.config.scaling_factor)
            lat = torch.cat(out).reshape(n, t, *out[0].shape[1:])
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(f".{os.getpid()}.tmp")
            torch.save(lat.cpu(), tmp)
            os.replace(tmp, cache)
        self._latents[kind] = lat.to(self.device)
        return self._latents[kind]

    def _plan_key(self) -> str:
        return f"{zlib.crc32(json.dumps(self.plan.to_dict(), sort_keys=True).encode()):08x}"

    # -- the generic resumable loop ------------------------------------------------------
    def _loop(
        self,
        name: str,
        modules: dict[str, Any],
        params: list[Any],
        lr: float,
        steps: int,
        step_fn: Callable[[int, Any], Any],
    ) -> tuple[list[float], float]:
        import torch
        from tqdm.auto import tqdm

        opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
        state_path = self.state_dir / f"{name}.pt"
        start, losses, wall = 0, [], 0.0
        # A saved state resumes only the run it came from: same starting weights and steps
        # (a retrained parent or T2I, or another step count, starts the stage afresh).
        fingerprint = f"{_fingerprint(modules)}-{steps}-{lr}"
        state = None
        if state_path.is_file():
            state = torch.load(state_path, map_location=self.device, weights_only=False)
            if state.get("fingerprint") != fingerprint:
                self.log(f"{name}: saved state belongs to another starting point; starting afresh")
                state = None
        if state is not None:
            for key, module in modules.items():
                module.load_state_dict(state["modules"][key])
            opt.load_state_dict(state["optimizer"])
            start, losses, wall = state["step"], state["losses"], state["wall"]
            self.log(f"{name}: resuming at step {start}/{steps}")
        stage_id = zlib.crc32(name.encode())
        bar = tqdm(
            range(start, steps), desc=name, disable=not self.progress, initial=start, total=steps
        )
        began = time.perf_counter() - wall
        for step in bar:
            seed = (self.plan.seed * 1_000_003 + stage_id) * 100_003 + step
            gen = torch.Generator(self.device).manual_seed(seed % 2**63)
            torch.manual_seed(self.plan.seed + stage_id + step)  # dropout inside diffusers blocks
            loss = step_fn(step, gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
            if (step + 1) % self.plan.save_every == 0 and step + 1 < steps:
                state_path.parent.mkdir(parents=True, exist_ok=True)
                tmp = state_path.with_suffix(".tmp")
                torch.save(
                    {
                        "modules": {k: m.state_dict() for k, m in modules.items()},
                        "optimizer": opt.state_dict(),
                        "step": step + 1,
                        "losses": losses,
                        "wall": time.perf_counter() - began,
                        "fingerprint": fingerprint,
                    },
                    tmp,
                )
                os.replace(tmp, state_path)
        bar.close()
        return losses, time.perf_counter() - began

    def _finish(
        self,
        name: str,
        models: dict[str, Any],
        card: dict[str, Any],
        losses: list[float],
        wall: float,
        save: Callable[[Any, Path], None] = checkpoints.save_model,
    ) -> None:
        """Write the stage's models (`save`: diffusers' folder layout unless told otherwise)
        and its card to a temporary folder, then put it in place."""
        tmp = self.out_dir / f".{name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        for sub, model in models.items():
            save(model, tmp / sub if sub else tmp)
        tail = losses[-50:] if losses else [float("nan")]
        card = {
            "name": name,
            "data_seed": self.plan.seed,
            "device": self.device,
            "wall_seconds": round(wall, 1),
            "final_loss": round(float(np.mean(tail)), 5),
            "steps_done": len(losses),
            **card,
        }
        checkpoints.write_card(tmp, card)
        final = self.out_dir / name
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        (self.state_dir / f"{name}.pt").unlink(missing_ok=True)
        self.log(f"{name}: {len(losses)} steps, final loss {card['final_loss']}, {wall:.0f} s")

    def _done(self, name: str, recipe: dict[str, Any]) -> bool:
        card = checkpoints.read_card(self.out_dir / name)
        return bool(card) and card.get("recipe") == recipe

    # -- stages ----------------------------------------------------------------------------
    def autoencoder(self) -> Any:
        import torch
        from diffusers import AutoencoderKL

        p = self.plan
        name = checkpoints.AUTOENCODER
        recipe = {"steps": p.ae_steps, "batch": p.ae_batch, "lr": p.ae_lr, "videos": p.videos}
        if not self._done(name, recipe):
            torch.manual_seed(p.seed)
            vae = build_autoencoder(p.size).to(self.device).train()
            videos = self.video_set("main").videos
            frames = videos.reshape(-1, *videos.shape[2:])

            def step(i: int, gen: Any) -> Any:
                idx = torch.randint(len(frames), (p.ae_batch,), generator=gen, device=self.device)
                x = _to_pixels(frames[idx.cpu().numpy()], self.device)
                posterior = vae.encode(x).latent_dist
                rec = vae.decode(posterior.sample(generator=gen)).sample
                return torch.nn.functional.mse_loss(rec, x) + 1e-6 * posterior.kl().mean()

            losses, wall = self._loop(
                name, {"vae": vae}, list(vae.parameters()), p.ae_lr, p.ae_steps, step
            )
            # Scale latents to unit variance, as LDMs do (the factor goes into the VAE config).
            with torch.no_grad():
                sample = _to_pixels(frames[:: max(1, len(frames) // 1024)], self.device)
                std = float(vae.encode(sample).latent_dist.mean.std())
            vae.register_to_config(scaling_factor=1.0 / std)
            self._finish(name, {"": vae}, {"kind": "autoencoder", "recipe": recipe}, losses, wall)
        return checkpoints.load_model(AutoencoderKL, self.out_dir / name, self.device)

    def refine_decoder(self, vae: Any) -> Any:
        """Sharpen the decoder on frozen-encoder latents (as SD's ft-MSE VAE did): later stages
        learn in the same latent space, so they can train while this runs."""
        import torch
        from diffusers import AutoencoderKL

        p = self.plan
        name = checkpoints.AUTOENCODER
        folder = self.out_dir / name
        spec = {"steps": p.decoder_steps, "batch": p.ae_batch, "lr": p.ae_lr / 2}
        card = checkpoints.read_card(folder)
        if card.get("decoder_refine") == spec:
            return vae
        vae = vae.to(self.device).train()
        params = [q for n, q in vae.named_parameters() if n.startswith(("decoder.", "post_quant"))]
        for param in vae.parameters():
            param.requires_grad_(False)
        for param in params:
            param.requires_grad_(True)
        videos = self.video_set("main").videos
        frames = videos.reshape(-1, *videos.shape[2:])

        def step(i: int, gen: Any) -> Any:
            idx = torch.randint(len(frames), (p.ae_batch,), generator=gen, device=self.device)
            x = _to_pixels(frames[idx.cpu().numpy()], self.device)
            with torch.no_grad():
                z = vae.encode(x).latent_dist.mean
            rec = vae.decode(z).sample
            return torch.nn.functional.mse_loss(rec, x)

        losses, wall = self._loop(
            "autoencoder-decoder", {"vae": vae}, params, spec["lr"], p.decoder_steps, step
        )
        tmp = self.out_dir / f".{name}.decoder.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        checkpoints.save_model(vae, tmp)
        tail = losses[-50:] if losses else [float("nan")]
        card["decoder_refine"] = spec
        card["decoder_final_loss"] = round(float(np.mean(tail)), 5)
        card["decoder_wall_seconds"] = round(wall, 1)
        checkpoints.write_card(tmp, card)
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
        (self.state_dir / "autoencoder-decoder.pt").unlink(missing_ok=True)
        self.log(f"autoencoder decoder: {len(losses)} steps, loss {card['decoder_final_loss']}")
        return checkpoints.load_model(AutoencoderKL, folder, self.device)

    def _t2i_recipe(self, schedule: str) -> dict[str, Any]:
        p = self.plan
        return {
            "schedule": schedule,
            "steps": p.t2i_steps,
            "batch": p.t2i_batch,
            "lr": p.t2i_lr,
            "frames": "first",
        }

    def t2i(self, schedule: str, vae: Any) -> Any:
        import torch
        from diffusers import UNet2DConditionModel

        p = self.plan
        name = checkpoints.t2i_checkpoint_name(schedule)
        # The T2I model makes the *first* image of a video (docs/method.md): it learns on first
        # frames, so "moves left" puts the shape where a leftward move starts, and the video model,
        # conditioned on that image, can carry the motion on.
        recipe = self._t2i_recipe(schedule)
        if not self._done(name, recipe):
            torch.manual_seed(p.seed + 1)
            unet = build_t2i(p.size).to(self.device).train()
            lat = self.latents("main", vae)
            text, null = self.text_table(self.video_set("main").captions)
            sched = training_scheduler(schedule)

            def step(i: int, gen: Any) -> Any:
                n = lat.shape[0]
                vid = torch.randint(n, (p.t2i_batch,), generator=gen, device=self.device)
                x0 = lat[vid, 0]
                e = _drop(text[vid], null, DROP_TEXT, gen)
                return _diffusion_loss(unet, sched, x0, e, gen, extra=None)

            losses, wall = self._loop(
                name, {"unet": unet}, list(unet.parameters()), p.t2i_lr, p.t2i_steps, step
            )
            card = {"kind": "t2i", "schedule": schedule, "recipe": recipe}
            self._finish(name, {"unet": unet}, card, losses, wall)
        return checkpoints.load_model(
            UNet2DConditionModel, self.out_dir / name / "unet", self.device
        )

    def video(self, recipe: VideoRecipe, vae: Any, t2i: Any, base: Any = None) -> Any:
        import torch

        p = self.plan
        name = recipe.name
        steps = p.hq_steps if recipe.hq_finetune else p.video_steps
        spec = {
            **asdict(recipe),
            "steps": steps,
            "batch": p.video_batch,
            "lr": p.video_lr,
            "low_res_fraction": p.low_res_fraction if recipe.multistage else 0.0,
            # Spatial weights come from the T2I model: a retrained one means a new video model.
            "t2i": self._t2i_recipe(recipe.schedule),
        }
        if recipe.spatial == "frozen":
            # Checkpoints trained before conv_in.bias was frozen (see set_trainable) lack this.
            spec["conv_in_bias"] = "frozen"
        if recipe.hq_finetune:
            spec["parent_steps"] = p.video_steps  # a longer-trained parent means a new fine-tune
        if not self._done(name, spec):
            torch.manual_seed(p.seed + 2)
            if recipe.hq_finetune:
                # HQ: continue the default video model on the high-motion subset (paper §3),
                # on a copy: the parent stays what its checkpoint holds for later stages.
                unet = copy.deepcopy(base)
            else:
                unet = inflate_t2i(t2i)
            unet = unet.to(self.device).train()
            params = set_trainable(unet, spatial=recipe.spatial)
            sched = training_scheduler(recipe.schedule)
            main = self.latents("main", vae)
            text, null = self.text_table(self.video_set("main").captions)
            pool = torch.arange(len(main), device=self.device)
            if recipe.hq_finetune:
                fast = torch.from_numpy(self.video_set("main").speed >= HQ_MIN_SPEED)
                pool = pool[fast.to(self.device)]
            low = self.latents("low", vae) if recipe.multistage else None
            low_text = (
                self.text_table(self.video_set("low").captions)[0] if low is not None else None
            )
            switch = int(round(steps * p.low_res_fraction)) if recipe.multistage else 0

            def step(i: int, gen: Any) -> Any:
                lat, txt = (low, low_text) if i < switch else (main, text)
                assert lat is not None and txt is not None
                choice = torch.randint(
                    len(pool), (p.video_batch,), generator=gen, device=self.device
                )
                vid = pool[choice]
                x0 = lat[vid].permute(0, 2, 1, 3, 4)  # (B, C, T, h, w)
                e = _drop(txt[vid], null, DROP_TEXT, gen)
                extra = _first_frame_condition(x0, recipe.mode == "factorized", gen)
                return _diffusion_loss(unet, sched, x0, e, gen, extra=extra)

            lr = p.video_lr / 2 if recipe.hq_finetune else p.video_lr
            losses, wall = self._loop(name, {"unet": unet}, params, lr, steps, step)
            card: dict[str, Any] = {
                "kind": "video",
                "config": asdict(recipe),
                "recipe": spec,
                "vae": checkpoints.AUTOENCODER,
                "t2i": checkpoints.t2i_checkpoint_name(recipe.schedule),
                "model_size": p.size.to_dict(),
                "image_size": p.image_size,
                "frames": p.frames,
            }
            if recipe.hq_finetune:
                card["parent"] = VideoRecipe(schedule=recipe.schedule).name
                card["hq_videos"] = int(len(pool))
            if recipe.multistage:
                card["stages"] = [
                    {"steps": switch, "size": p.image_size // 2, "fps_factor": 2},
                    {"steps": steps - switch, "size": p.image_size, "fps_factor": 1},
                ]
            self._finish(name, {"unet": unet}, card, losses, wall)
            if recipe.spatial == "frozen":
                checkpoints.compact_frozen(self.out_dir / name, self.out_dir)
        return checkpoints.load_video_unet(self.out_dir / name, self.out_dir, self.device)

    def interpolation(self, vae: Any, base: Any) -> None:
        import torch

        from .pipeline import interpolation_layout

        p = self.plan
        name = checkpoints.INTERPOLATION
        out_frames, positions = interpolation_layout(p.frames)
        spec = {
            "steps": p.interp_steps,
            "batch": p.interp_batch,
            "videos": p.interp_videos,
            "parent_steps": p.video_steps,
            "t2i": self._t2i_recipe("zero_snr"),
        }
        if self._done(name, spec):
            return
        unet = copy.deepcopy(base).to(self.device).train()  # the parent stays as loaded
        params = set_trainable(unet, spatial="frozen", temporal_only=True)
        sched = training_scheduler("zero_snr")
        lat = self.latents("interp", vae)
        text, null = self.text_table(self.video_set("interp").captions)
        pos = torch.tensor(positions, device=self.device)

        def step(i: int, gen: Any) -> Any:
            vid = torch.randint(len(lat), (p.interp_batch,), generator=gen, device=self.device)
            x0 = lat[vid].permute(0, 2, 1, 3, 4)
            b, c, _, h, w = x0.shape
            # Noise augmentation of the given frames, t ≤ 250 in training (docs/method.md).
            given = x0[:, :, pos]
            t_aug = torch.randint(0, 251, (b,), generator=gen, device=self.device)
            noise = torch.randn(given.shape, generator=gen, device=self.device)
            cond = x0.new_zeros(b, c, out_frames, h, w)
            cond[:, :, pos] = sched.add_noise(given, noise, t_aug)
            mask = x0.new_zeros(b, 1, out_frames, h, w)
            mask[:, :, pos] = 1.0
            e = _drop(text[vid], null, DROP_TEXT, gen)
            return _diffusion_loss(unet, sched, x0, e, gen, extra=torch.cat([cond, mask], 1))

        losses, wall = self._loop(name, {"unet": unet}, params, p.video_lr, p.interp_steps, step)
        card = {
            "kind": "interpolation",
            "recipe": spec,
            "parent": VideoRecipe().name,
            "t2i": checkpoints.t2i_checkpoint_name("zero_snr"),
            "layout": {"in_frames": p.frames, "out_frames": out_frames, "positions": positions},
            # How it must be sampled, whatever the variant using it (pipeline.py reads this).
            "scheduler": checkpoints.interpolation_scheduler_card("zero_snr"),
            "sampling": checkpoints.interpolation_sampling_card(
                p.interp_strength, p.interp_guidance_text
            ),
        }
        self._finish(name, {"unet": unet}, card, losses, wall)
        checkpoints.compact_frozen(self.out_dir / name, self.out_dir)

    def classifier(self) -> None:
        from . import metrics

        p = self.plan
        name = checkpoints.CLASSIFIER
        spec = {"steps": p.classifier_steps, "videos": p.videos, "architecture": 2}
        if self._done(name, spec):
            return
        wall = time.perf_counter()
        videos = self.video_set("main")
        model, losses = metrics.train_classifier(
            videos,
            steps=p.classifier_steps,
            seed=p.seed,
            device=self.device,
            progress=self.progress,
        )
        metrics.save_classifier(
            model,
            self.out_dir / name,
            card={
                "name": name,
                "kind": "classifier",
                "recipe": spec,
                "data_seed": p.seed,
                "device": self.device,
                "wall_seconds": round(time.perf_counter() - wall, 1),
                "final_loss": round(float(np.mean(losses[-50:])), 5),
                "steps_done": len(losses),
            },
        )

    def temporal_decoder(self, vae: Any) -> None:
        """The temporal decoder (temporal_decoding.py), on the training videos' latents: it
        depends on the encoder only, like every video model."""
        p = self.plan
        name = temporal_decoding.FOLDER
        recipe = {
            "steps": p.temporal_steps,
            "batch": p.temporal_batch,
            "lr": p.temporal_lr,
            "sigma": p.temporal_sigma,
            "videos": p.videos,
        }
        if self._done(name, recipe):
            return
        latents = self.latents("main", vae).transpose(1, 2)  # (N, C, T, h, w)
        model = temporal_decoding.build(latents.shape[1]).to(self.device).train()

        def step(i: int, gen: Any) -> Any:
            import torch

            n = (p.temporal_batch,)
            idx = torch.randint(len(latents), n, generator=gen, device=self.device)
            return temporal_decoding.loss(model, latents[idx], p.temporal_sigma, gen)

        losses, wall = self._loop(
            name, {"model": model}, list(model.parameters()), p.temporal_lr, p.temporal_steps, step
        )
        self._finish(
            name,
            {"": model.eval()},
            {
                "kind": "temporal-decoder",
                "recipe": recipe,
                "architecture": temporal_decoding.architecture(model),
            },
            losses,
            wall,
            save=temporal_decoding.save_weights,
        )

    def run_all(self, only: frozenset[str] | None = None) -> dict[str, Any]:
        """Every stage in the order the demo needs them; `only` restricts to named stages
        (their parents are trained too where missing)."""
        started = time.perf_counter()
        vae = self.autoencoder()
        if only is None or "autoencoder-decoder" in only:
            vae = self.refine_decoder(vae)
        t2is: dict[str, Any] = {}
        videos: dict[VideoRecipe, Any] = {}

        def t2i(schedule: str) -> Any:
            if schedule not in t2is:
                t2is[schedule] = self.t2i(schedule, vae)
            return t2is[schedule]

        def video(recipe: VideoRecipe) -> Any:
            if recipe not in videos:
                parent = None
                if recipe.hq_finetune:
                    parent = video(replace(recipe, hq_finetune=False))
                videos[recipe] = self.video(recipe, vae, t2i(recipe.schedule), base=parent)
            return videos[recipe]

        def wanted(name: str) -> bool:
            return only is None or name in only

        for index, recipe in enumerate(self.plan.recipes):
            if wanted(recipe.name):
                video(recipe)
            if index == min(1, len(self.plan.recipes) - 1):
                # The demo's two variants are done: the judge and the interpolator next.
                if wanted(checkpoints.CLASSIFIER):
                    self.classifier()
                if wanted(checkpoints.INTERPOLATION) and "zero_snr" in self.plan.schedules:
                    self.interpolation(vae, video(VideoRecipe()))
        if wanted(checkpoints.CLASSIFIER):
            self.classifier()
        if wanted(temporal_decoding.FOLDER):
            self.temporal_decoder(vae)
        summary = {"wall_seconds": round(time.perf_counter() - started, 1), "device": self.device}
        self.log(f"training finished in {summary['wall_seconds']} s on {self.device}")
        return summary


def _fingerprint(modules: dict[str, Any]) -> str:
    """A checksum of the modules' weights (the starting point of a stage)."""
    crc = 0
    for key in sorted(modules):
        for name, tensor in sorted(modules[key].state_dict().items()):
            crc = zlib.crc32(name.encode(), crc)
            crc = zlib.crc32(tensor.detach().float().cpu().numpy().tobytes(), crc)
    return f"{crc:08x}"


def _to_pixels(frames: np.ndarray, device: str) -> Any:
    import torch

    x = torch.from_numpy(np.ascontiguousarray(frames)).to(device).float()
    return x.permute(0, 3, 1, 2) / 127.5 - 1.0


def _drop(text: Any, null: Any, p: float, gen: Any) -> Any:
    """Classifier-free guidance dropout: replace a row's text by the empty prompt."""
    import torch

    keep = torch.rand(text.shape[0], generator=gen, device=text.device) >= p
    return torch.where(keep[:, None, None], text, null[None].expand_as(text))


def _first_frame_condition(x0: Any, factorized: bool, gen: Any) -> Any:
    """[zero-padded first-frame latents, mask]; all zeros for direct or dropped rows."""
    import torch

    b, c, t, h, w = x0.shape
    cond = torch.zeros_like(x0)
    mask = x0.new_zeros(b, 1, t, h, w)
    if factorized:
        keep = (torch.rand(b, generator=gen, device=x0.device) >= DROP_IMAGE).float()
        cond[:, :, 0] = x0[:, :, 0] * keep[:, None, None, None]
        mask[:, :, 0] = keep[:, None, None, None]
    return torch.cat([cond, mask], dim=1)


def _diffusion_loss(unet: Any, sched: Any, x0: Any, text: Any, gen: Any, extra: Any) -> Any:
    import torch

    noise = torch.randn(x0.shape, generator=gen, device=x0.device)
    steps = sched.config.num_train_timesteps
    t = torch.randint(0, steps, (x0.shape[0],), generator=gen, device=x0.device)
    noisy = sched.add_noise(x0, noise, t)
    inputs = noisy if extra is None else torch.cat([noisy, extra], dim=1)
    pred = unet(inputs, t, encoder_hidden_states=text).sample
    return torch.nn.functional.mse_loss(pred, training_target(sched, x0, noise, t))


def train_variants(
    *,
    seed: int,
    out_dir: Path,
    state_dir: Path,
    device: str | None = None,
    threads: int = 1,
    plan: TrainingPlan | None = None,
    only: frozenset[str] | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train (or finish training) the whole family; returns wall time and device."""
    import torch

    torch.set_num_threads(threads)
    plan = replace(plan or TrainingPlan(), seed=seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    state_dir.mkdir(parents=True, exist_ok=True)
    trainer = Trainer(
        plan, out_dir=out_dir, state_dir=state_dir, device=device, progress=progress, log=log
    )
    return trainer.run_all(only)
