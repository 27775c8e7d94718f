#!/usr/bin/env python3
"""Reference data for the built-in depth engine (src/engine), made with the
reference implementation: Hugging Face transformers' Depth Anything V2 on
PyTorch. Run by hand, not in CI (CI needs no torch): its output is checked in.

    scripts/make-depth-fixture.py tiny
        A tiny random-weight DepthAnythingForDepthEstimation in the
        transformers layout (config.json, preprocessor_config.json,
        model.safetensors) and the reference outputs for two fixed photos
        (one not square), in tests/fixtures/depth-anything-tiny/
        (tests/engine_parity.rs compares our engine with them).

    scripts/make-depth-fixture.py real --size small --out DIR
        Random weights of the real Small (or Base, Large) architecture, for
        the benchmark (100 MB for Small: not checked in).

    scripts/make-depth-fixture.py bench --model DIR --image PHOTO --threads 1,2
        Seconds per photo with PyTorch on the CPU through the same path as
        the AI service (decode, the image processor, the model, bicubic
        resize to the photo's size, 8-bit PNG), and the model alone; one
        JSON line per thread count (scripts/engine-bench.sh reads them).

The first run makes a virtual environment (DEPTH_VENV, default
~/.cache/immichvr/depth-venv) with torch and transformers from PyPI (about
3 GB of wheels, once) and runs itself again inside it.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

# The versions the fixture was made with (the AI service's own pins are
# older; the model code and the PIL image processor are the same).
PINS = ["torch==2.15.0", "transformers==5.25.0", "pillow==13.0.0", "safetensors==0.8.0", "numpy==2.4.6"]
REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "depth-anything-tiny"


def ensure_venv():
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
        return
    except ImportError:
        pass
    venv = Path(os.environ.get("DEPTH_VENV", Path.home() / ".cache" / "immichvr" / "depth-venv"))
    py = venv / "bin" / "python"
    if os.environ.get("MAKE_DEPTH_FIXTURE_IN_VENV"):
        sys.exit(f"{py} has no torch/transformers: remove {venv} and run again")
    if not py.exists():
        print(f"making {venv} (torch and transformers from PyPI, ~3 GB, once)", file=sys.stderr)
        subprocess.check_call([sys.executable, "-m", "venv", str(venv)])
        subprocess.check_call([str(py), "-m", "pip", "install", "-q", *PINS])
    env = dict(os.environ, MAKE_DEPTH_FIXTURE_IN_VENV="1")
    os.execve(str(py), [str(py), __file__, *sys.argv[1:]], env)


# The three published sizes (depth-anything/Depth-Anything-V2-*-hf).
REAL = {
    "small": dict(hidden=384, layers=12, heads=6, out=[3, 6, 9, 12], neck=[48, 96, 192, 384], fusion=64),
    "base": dict(hidden=768, layers=12, heads=12, out=[3, 6, 9, 12], neck=[96, 192, 384, 768], fusion=128),
    "large": dict(hidden=1024, layers=24, heads=16, out=[5, 12, 18, 24], neck=[256, 512, 1024, 1024], fusion=256),
}
# Tiny: every code path of the real one (layer scale, several heads,
# position embeddings interpolated for a non-square input, the four
# reassemble factors, the fusion stage), a few hundred KiB.
TINY = dict(hidden=24, layers=4, heads=2, out=[1, 2, 3, 4], neck=[8, 16, 24, 24], fusion=12, head_hidden=8, image=140)


def make_config(a):
    from transformers import DepthAnythingConfig, Dinov2Config

    backbone = Dinov2Config(
        image_size=a.get("image", 518),
        patch_size=14,
        hidden_size=a["hidden"],
        num_hidden_layers=a["layers"],
        num_attention_heads=a["heads"],
        out_indices=a["out"],
        reshape_hidden_states=False,
    )
    return DepthAnythingConfig(
        backbone_config=backbone,
        reassemble_hidden_size=a["hidden"],
        neck_hidden_sizes=a["neck"],
        fusion_hidden_size=a["fusion"],
        head_hidden_size=a.get("head_hidden", 32),
        depth_estimation_type="relative",
    )


def preprocessor_config(size):
    # As published with the -hf checkpoints.
    return {
        "do_normalize": True,
        "do_rescale": True,
        "do_resize": True,
        "ensure_multiple_of": 14,
        "image_mean": [0.485, 0.456, 0.406],
        "image_processor_type": "DPTImageProcessor",
        "image_std": [0.229, 0.224, 0.225],
        "keep_aspect_ratio": True,
        "resample": 3,
        "rescale_factor": 0.00392156862745098,
        "size": {"height": size, "width": size},
    }


def random_model(a, seed):
    import torch
    from transformers import DepthAnythingForDepthEstimation

    torch.manual_seed(seed)
    model = DepthAnythingForDepthEstimation(make_config(a)).eval()
    # Weights that keep activations alive through every layer (the
    # library's own init makes near-zero outputs of a tiny model).
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("lambda1"):
                p.uniform_(0.5, 1.5)
            elif "norm" in name and name.endswith("weight"):
                p.normal_(1.0, 0.1)
            elif name.endswith("bias") or p.dim() == 1:
                p.normal_(0.0, 0.1)
            elif "position_embeddings" in name or "cls_token" in name or "mask_token" in name:
                p.normal_(0.0, 0.5)
            else:
                p.normal_(0.0, 1.0 / p[0].numel() ** 0.5)
        # Most of the map above zero, so the final ReLU hides little.
        model.head.conv3.bias.fill_(0.5)
    return model


def save_model(model, out, size):
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    (out / "preprocessor_config.json").write_text(json.dumps(preprocessor_config(size), indent=2) + "\n")


def photos():
    """Two fixed photos: a small square one (the processor enlarges it, the
    depth map is shrunk back) and a wider one (shrunk, then enlarged)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(7)

    def scene(w, h):
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        r = 127 + 100 * np.sin(x / w * 6.0) * np.cos(y / h * 4.0)
        g = 255 * (y / h)
        b = 255 * ((x - w / 2) ** 2 + (y - h / 3) ** 2 < (min(w, h) / 4) ** 2)
        img = np.stack([r, g, b], axis=-1) + rng.normal(0, 6, (h, w, 3))
        return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")

    return {"square": scene(40, 40), "wide": scene(240, 160)}


def reference(model_dir, images):
    """What the AI service makes of each photo: the PIL image processor, the
    model, bicubic resize to the photo's size, min-max to 8 bits."""
    import numpy as np
    import torch
    from transformers import DepthAnythingForDepthEstimation
    from transformers.models.dpt.image_processing_pil_dpt import DPTImageProcessorPil

    model = DepthAnythingForDepthEstimation.from_pretrained(model_dir).eval()
    proc = DPTImageProcessorPil(**json.loads((model_dir / "preprocessor_config.json").read_text()))
    out = {}
    for name, img in images.items():
        size = proc.size
        from transformers.image_utils import SizeDict

        resized = proc.resize(
            np.asarray(img).transpose(2, 0, 1),
            SizeDict(height=size.height, width=size.width),
            proc.resample,
            ensure_multiple_of=proc.ensure_multiple_of,
            keep_aspect_ratio=proc.keep_aspect_ratio,
        )
        pixel_values = proc(images=img, return_tensors="pt")["pixel_values"]
        with torch.no_grad():
            outputs = model(pixel_values=pixel_values)
        post = proc.post_process_depth_estimation(outputs, [img.size[::-1]])[0]["predicted_depth"]
        d = post.numpy()
        d = (d - d.min()) / (d.max() - d.min())
        depth = (d * 255).astype("uint8")
        out[f"{name}.resized"] = torch.from_numpy(np.ascontiguousarray(resized.transpose(1, 2, 0)))
        out[f"{name}.predicted_depth"] = outputs.predicted_depth[0].contiguous()
        out[f"{name}.depth"] = torch.from_numpy(depth)
        print(f"{name}: photo {img.size}, network input {tuple(pixel_values.shape[2:])}", file=sys.stderr)
    return out


def cmd_tiny(_args):
    from safetensors.torch import save_file

    save_model(random_model(TINY, seed=29), FIXTURE, TINY["image"])
    images = photos()
    for name, img in images.items():
        img.save(FIXTURE / f"{name}.png")
    save_file(reference(FIXTURE, images), str(FIXTURE / "reference.safetensors"))
    for f in sorted(FIXTURE.iterdir()):
        print(f"{f.stat().st_size:>9}  {f.relative_to(REPO)}", file=sys.stderr)


def cmd_real(args):
    save_model(random_model(REAL[args.size], seed=1), Path(args.out), 518)
    print(f"random {args.size} weights in {args.out}", file=sys.stderr)


def cmd_bench(args):
    import io

    import numpy as np
    import torch
    from PIL import Image, ImageOps
    from transformers import DepthAnythingForDepthEstimation
    from transformers.models.dpt.image_processing_pil_dpt import DPTImageProcessorPil

    model_dir = Path(args.model)
    model = DepthAnythingForDepthEstimation.from_pretrained(model_dir).eval()
    proc = DPTImageProcessorPil(**json.loads((model_dir / "preprocessor_config.json").read_text()))
    data = Path(args.image).read_bytes()
    for threads in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(threads)

        def photo():
            img = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
            pv = proc(images=img, return_tensors="pt")["pixel_values"]
            with torch.no_grad():
                t0 = time.perf_counter()
                outputs = model(pixel_values=pv)
                net = time.perf_counter() - t0
            d = proc.post_process_depth_estimation(outputs, [img.size[::-1]])[0]["predicted_depth"].numpy()
            d = (d - d.min()) / (d.max() - d.min())
            buf = io.BytesIO()
            Image.fromarray((d * 255).astype("uint8")).save(buf, "PNG")
            return net, tuple(pv.shape[2:])

        photo()  # warm-up
        totals, nets = [], []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            net, shape = photo()
            totals.append(time.perf_counter() - t0)
            nets.append(net)
        print(json.dumps({
            "impl": "pytorch", "threads": threads, "input": list(shape),
            "photo_s": float(np.median(totals)), "model_s": float(np.median(nets)), "runs": args.runs,
            "torch": torch.__version__,
        }))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("tiny")
    r = sub.add_parser("real")
    r.add_argument("--size", choices=sorted(REAL), default="small")
    r.add_argument("--out", required=True)
    b = sub.add_parser("bench")
    b.add_argument("--model", required=True)
    b.add_argument("--image", required=True)
    b.add_argument("--threads", default="1,2")
    b.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    ensure_venv()
    {"tiny": cmd_tiny, "real": cmd_real, "bench": cmd_bench}[args.cmd](args)


if __name__ == "__main__":
    main()
