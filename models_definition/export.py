"""Export a model to ONNX, proven equal to its source before the file is written.

    python -m models_definition.export small-r18h-distill                 # -> the entry's "onnx" file
    python -m models_definition.export small-r18h-distill out.onnx --int8  # and out-int8.onnx

Any model of ``config.MODELS`` with a PyTorch network (a checkpoint, a converted or random-init backbone) is
traced into ONNX (opset :data:`OPSET`, dynamic batch) with its name, spec, preprocessing, threshold records and
the source checkpoint's SHA-256 in the file's metadata (:mod:`.onnx_backend`), so the file alone is a usable
embedder. Before anything is written the export is checked against the PyTorch model on real aligned faces:

* every face's embedding within cosine :data:`MIN_PARITY_COS` of the PyTorch one, and
* each pair set's 10-fold accuracy (LFW View 2 by default, CFP-FP when it is there) within
  :data:`MAX_ACCURACY_CHANGE_POINTS`;

failing either is an :class:`ExportParityError` and no file is written. ``--int8`` also writes an int8 model:
onnxruntime static quantisation (QDQ, per-channel int8 weights, uint8 activations; VNNI / AMX int8 units run
it) calibrated on aligned faces that are not benchmark faces (``--calibration``, default the sample faces),
kept only if no pair set loses more accuracy than ``config.INT8_MAX_DROP_POINTS`` allows
(:class:`Int8RefusedError` otherwise). LFW View 2 here checks a conversion of fixed weights; it never chooses a
model.
"""
from __future__ import annotations

import argparse
import io
import sys
import tempfile
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from facedata.cli import command
from facedata.errors import FaceKitError, UsageError
from facedata.io import check_output_file, image_files, load_image, write_bytes_atomic

from .onnx_backend import INPUT_NAME, OUTPUT_NAME, encode_metadata, forward_of, session
from .thresholds import entry_records, load_measured
from .zoo import NETWORK_KEYS, FaceEmbedder, check_model_names, load_model

PROG = "python -m models_definition.export"
OPSET = 17  # every op of our backbones; onnxruntime 1.2x runs it
MIN_PARITY_COS = 0.9999  # float32 ONNX against float32 PyTorch differs by summation order alone (~1e-6)
MAX_ACCURACY_CHANGE_POINTS = 0.05  # the bound: the same 10-fold accuracy, to within 0.05 points
CALIBRATION_IMAGES = 512  # faces the int8 ranges are calibrated on: more changed LFW by < 0.1 points here
PARITY_FACES = 256  # faces of the parity folder compared one by one when no pair set is checked
# An embedding this far from its PyTorch one is counted as moved (reported, int8's rule is the accuracy): int8
# moves typical faces to cosine ~0.999, but faces whose float activations blow up (docs/deployment.md) much further.
FAR_COS = 0.9


class ExportError(FaceKitError):
    """A model that cannot be exported (no PyTorch network) or an export that failed."""


class ExportParityError(ExportError):
    """An export whose embeddings or accuracy differ from its PyTorch source beyond the bounds; nothing written."""


class Int8RefusedError(ExportError):
    """An int8 model that loses more accuracy than allowed; the float32 export (already checked) is kept."""


@dataclass
class SetCheck:
    """One pair set's 10-fold accuracy (%) from the PyTorch model and from the export."""

    name: str
    pairs: int
    torch_acc: float
    export_acc: float

    @property
    def change(self) -> float:
        return self.export_acc - self.torch_acc


@dataclass
class Parity:
    """How an export compares with its PyTorch source on the same crops."""

    precision: str
    faces: int
    min_cos: float
    mean_cos: float
    sets: list[SetCheck] = field(default_factory=list)
    far_faces: int = 0  # faces whose cosine to the PyTorch embedding is below FAR_COS

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "sets": [dict(asdict(s), change=s.change) for s in self.sets]}

    def lines(self) -> list[str]:
        out = [f"{self.precision}: {self.faces} faces, cosine to PyTorch min {self.min_cos:.6f} mean {self.mean_cos:.6f}"
               f" ({self.far_faces} below {FAR_COS})"]
        out += [f"  {s.name} ({s.pairs} pairs): PyTorch {s.torch_acc:.2f}%, export {s.export_acc:.2f}% "
                f"({s.change:+.2f} points)" for s in self.sets]
        return out


# --- the pieces --------------------------------------------------------------------------------------------
def torch_network(embedder: FaceEmbedder) -> torch.nn.Module:
    """The float32 eval-mode network behind ``embedder``; an ExportError for models without one."""
    if embedder.module is None:
        raise ExportError(f"model {embedder.name!r} runs on {embedder.backend!r}, not a PyTorch network of ours: "
                          "nothing to export (reference embedders run their own published files)")
    return embedder.module.float().eval()


def to_onnx(module: torch.nn.Module, size_px: int) -> bytes:
    """``module`` as ONNX bytes: input ``(batch, 3, size_px, size_px)`` float32, output ``(batch, D)``."""
    x = torch.zeros(2, 3, size_px, size_px)
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice: noise for the user
        torch.onnx.export(module.to(memory_format=torch.contiguous_format), (x,), buf, input_names=[INPUT_NAME],
                          output_names=[OUTPUT_NAME], opset_version=OPSET, dynamo=False,
                          dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}})
    return buf.getvalue()


def with_metadata(model: bytes, values: Mapping[str, Any]) -> bytes:
    """``model`` with ``values`` as its metadata properties (replacing ours, keeping any others)."""
    import onnx

    proto = onnx.load_from_string(model)
    props = encode_metadata(values)
    keep = [p for p in proto.metadata_props if p.key not in props]
    del proto.metadata_props[:]
    proto.metadata_props.extend(keep)
    for k, v in props.items():
        proto.metadata_props.add(key=k, value=v)
    return proto.SerializeToString()


def onnx_embedder(model: bytes, like: FaceEmbedder, name: str) -> FaceEmbedder:
    """An embedder running ``model`` (bytes) with ``like``'s preprocessing and settings; not cached."""
    return FaceEmbedder(name, forward_of(session(model, what=name)), like.preprocess, like.embedding_size,
                        like.threshold, like.threshold_fpr, {}, like.flip_tta, like.batch_size, backend="onnx")


def read_crops(paths: Sequence[Path]) -> list[np.ndarray]:
    return [load_image(p) for p in paths]


def compare(reference: FaceEmbedder, candidate: FaceEmbedder, precision: str, faces: Sequence[Path],
            pair_sets: Mapping[str, Any]) -> Parity:
    """Embed ``faces`` and every pair set's images with both; the cosine of each face's two embeddings and each
    set's 10-fold accuracy (``id_rate.evaluate.score_pairs``, the protocol every table uses)."""
    from id_rate.evaluate import score_pairs

    paths = sorted({Path(p) for p in faces} | {p for ps in pair_sets.values() for p in ps.paths if p is not None})
    index = {p: i for i, p in enumerate(paths)}
    ref_parts = [np.zeros((0, reference.embedding_size), np.float32)]
    cand_parts = list(ref_parts)
    for i in range(0, len(paths), 1024):  # a few MB of crops at a time
        crops = read_crops(paths[i:i + 1024])
        ref_parts.append(reference(crops))
        cand_parts.append(candidate(crops))
    ref, cand = np.concatenate(ref_parts), np.concatenate(cand_parts)
    cos = np.einsum("ij,ij->i", ref.astype(np.float64), cand.astype(np.float64))
    checks = []
    for name, ps in pair_sets.items():
        rows = np.array([index[p] for p in ps.paths])
        accs = [score_pairs(ps, e[rows[0::2]], e[rows[1::2]]).accuracy_mean * 100 for e in (ref, cand)]
        checks.append(SetCheck(name, len(ps.issame), float(accs[0]), float(accs[1])))
    return Parity(precision, len(paths), float(cos.min()) if len(cos) else float("nan"),
                  float(cos.mean()) if len(cos) else float("nan"), checks, int((cos < FAR_COS).sum()))


def check_float32(parity: Parity) -> None:
    """Refuse a float32 export that is not the same model: a face below MIN_PARITY_COS, or a set's accuracy
    moved by more than MAX_ACCURACY_CHANGE_POINTS."""
    bad = []
    if not parity.min_cos >= MIN_PARITY_COS:  # NaN fails too
        bad.append(f"a face's cosine to the PyTorch embedding is {parity.min_cos:.6f} (< {MIN_PARITY_COS})")
    bad += [f"{s.name} accuracy {s.export_acc:.2f}% against PyTorch's {s.torch_acc:.2f}% ({s.change:+.2f} points, "
            f"bound {MAX_ACCURACY_CHANGE_POINTS})" for s in parity.sets
            if not abs(s.change) <= MAX_ACCURACY_CHANGE_POINTS]
    if bad:
        raise ExportParityError("the export differs from its PyTorch model: " + "; ".join(bad) + "; nothing was "
                                "written. Report it with the model's spec: an operator the exporter converts "
                                "differently")


def check_int8(parity: Parity, max_drop_points: Mapping[str, float], default_drop_points: float) -> None:
    """The int8 refusal rule: refused when any pair set's accuracy falls by more than its allowed points
    (``max_drop_points[set]``, else ``default_drop_points``) below the PyTorch model's, or when no set was
    checked (an int8 model's loss must be measured before it is used)."""
    if not parity.sets:
        raise Int8RefusedError("int8: no pair set was checked, so its accuracy loss is unknown; give LFW "
                               "(--lfw-dir/--lfw-pairs) or --pairs, or leave out --int8")
    bad = [f"{s.name} {s.torch_acc:.2f}% -> {s.export_acc:.2f}% ({s.change:+.2f} points, allowed "
           f"-{max_drop_points.get(s.name, default_drop_points)})" for s in parity.sets
           if not -s.change <= max_drop_points.get(s.name, default_drop_points)]
    if bad:
        raise Int8RefusedError("int8 model refused, it loses too much accuracy: " + "; ".join(bad) + "; the "
                               "float32 export is kept. Calibrate on more faces (--calibration-images) or use "
                               "the float32 one")


class _Calibration:
    """onnxruntime's CalibrationDataReader over preprocessed crops, a batch at a time."""

    def __init__(self, crops: Sequence[np.ndarray], embedder: FaceEmbedder, batch: int = 32) -> None:
        self.batches = [np.stack([embedder.preprocess.to_array(c) for c in crops[i:i + batch]])
                        for i in range(0, len(crops), batch)]
        self.i = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.i >= len(self.batches):
            return None
        self.i += 1
        return {INPUT_NAME: self.batches[self.i - 1]}

    def rewind(self) -> None:
        self.i = 0


def quantize_int8(model: bytes, crops: Sequence[np.ndarray], embedder: FaceEmbedder) -> bytes:
    """Static int8 quantisation of a float32 export: QDQ, per-channel int8 weights, uint8 activations with
    ranges from ``crops`` (MinMax calibration)."""
    if not crops:
        raise ExportError("int8: no calibration faces; give --calibration DIR (aligned faces, never benchmark ones)")
    import logging

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantiser logs every tensor it leaves alone (a 1-D weight's axis): noise
    try:
        return _quantize(model, crops, embedder)
    finally:
        root.setLevel(level)


def _quantize(model: bytes, crops: Sequence[np.ndarray], embedder: FaceEmbedder) -> bytes:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(prefix="facekit-int8-") as tmp:
        src, pre, out = Path(tmp) / "fp32.onnx", Path(tmp) / "pre.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(model)
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)  # folds and infers shapes first
        quantize_static(str(pre), str(out), _Calibration(crops, embedder), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)
        return out.read_bytes()


def calibration_paths(folder: Path, n: int, exclude: set[Path], seed: int = 0) -> list[Path]:
    """``n`` aligned faces of ``folder`` (seeded, spread over its people), none of them in ``exclude`` (the
    faces the check scores: a model is never calibrated on what measures it)."""
    if not folder.is_dir():
        raise UsageError(f"--calibration {folder}: not a folder of aligned faces; align some with `python -m "
                         "facedata.prepare SRC DST` (never benchmark faces), or `make demo` for data/sample_aligned")
    ex = {p.resolve() for p in exclude}
    paths = [p for p in image_files(folder, recursive=True) if p.resolve() not in ex]
    if not paths:
        raise UsageError(f"--calibration {folder}: no aligned face images there (outside the checked pair sets)")
    rng = np.random.default_rng(seed)
    return sorted(paths) if len(paths) <= n else sorted(rng.choice(np.array(paths, dtype=object), n, replace=False))


def check_exportable(name: str, registry: Mapping[str, Mapping[str, Any]]) -> Mapping[str, Any]:
    """The registry entry of ``name``, refused unless it has a PyTorch network of ours to export (checked before
    any data is read)."""
    check_model_names([name], registry)
    entry = registry[name]
    if entry.get("backend") == "onnx":  # e.g. small-r18h-distill-int8: a file this command writes from another entry
        raise UsageError(f"model {name!r} is an ONNX export itself; export its source instead: python -m "
                         f"models_definition.export {entry.get('export_of') or '<source model>'}")
    if not NETWORK_KEYS & set(entry):
        raise ExportError(f"model {name!r} is not a PyTorch network of ours: nothing to export (reference embedders "
                          "such as sface and dlib run their own published files)")
    return entry


# --- the command -------------------------------------------------------------------------------------------
@dataclass
class ExportResult:
    path: Path
    parity: Parity
    int8_path: Path | None = None
    int8_parity: Parity | None = None
    int8_refused: str | None = None


def export_model(name: str, registry: Mapping[str, Mapping[str, Any]], out: Path, pair_sets: Mapping[str, Any],
                 parity_faces: Sequence[Path] = (), int8: bool = False, calibration: Sequence[Path] = (),
                 int8_max_drop_points: Mapping[str, float] | None = None, int8_default_drop_points: float = 0.5,
                 overwrite: bool = False, log=print) -> ExportResult:
    """Export ``name`` to ``out`` (and ``out``'s ``-int8`` sibling with ``int8``), each checked before it is
    written (module docstring). Returns what was written and how it compares."""
    entry = check_exportable(name, registry)
    out = check_output_file(out, "output", overwrite, (".onnx",))
    int8_out = out.with_name(out.stem + "-int8.onnx")
    if int8:
        check_output_file(int8_out, "int8 output", overwrite, (".onnx",))
    if not pair_sets and not parity_faces:
        raise UsageError("nothing to check the export on: give LFW (--lfw-dir/--lfw-pairs), --pairs or --faces")
    # the reference in float32 even where the entry serves in bfloat16: parity is with the network's own numbers
    reference = load_model(name, {name: dict(entry, cpu_bf16=False)}, device="cpu", backend="torch")
    module = torch_network(reference)
    measured = load_measured(entry["measured_thresholds"]).get(name, []) if entry.get("measured_thresholds") else []
    spec = {k: v for k, v in reference.spec.items() if k != "inference_dtype"}
    meta: dict[str, Any] = dict(name=name, spec=spec, preprocess=reference.preprocess.to_dict(),
                                embedding_size=reference.embedding_size,
                                thresholds=[dict(r) for r in entry_records(entry, spec, measured)],
                                torch=torch.__version__, opset=OPSET,
                                benchmark_check=sorted(pair_sets))  # [] = checked on the parity faces alone
    if reference.checkpoint is not None:
        from .fingerprint import file_sha256

        meta["source_sha256"] = file_sha256(reference.checkpoint)
        meta["source"] = Path(reference.checkpoint).name
    log(f"exporting {name} ({reference.preprocess.size_px} px, {reference.embedding_size}-D) ...")
    fp32 = to_onnx(module, reference.preprocess.size_px)
    parity = compare(reference, onnx_embedder(fp32, reference, name), "float32", parity_faces, pair_sets)
    for line in parity.lines():
        log(line)
    check_float32(parity)
    write_bytes_atomic(with_metadata(fp32, dict(meta, precision="float32", parity=parity.to_dict())), out)
    log(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
    result = ExportResult(out, parity)
    if not int8:
        return result
    log(f"int8: calibrating on {len(calibration)} faces ...")
    q = quantize_int8(fp32, read_crops(calibration), reference)
    result.int8_parity = compare(reference, onnx_embedder(q, reference, name + "-int8"), "int8", parity_faces,
                                 pair_sets)
    for line in result.int8_parity.lines():
        log(line)
    try:
        check_int8(result.int8_parity, int8_max_drop_points or {}, int8_default_drop_points)
    except Int8RefusedError as exc:
        result.int8_refused = str(exc)
        raise
    calib_note = sorted({str(Path(p).parent.parent) for p in calibration})
    write_bytes_atomic(with_metadata(q, dict(meta, precision="int8", parity=result.int8_parity.to_dict(),
                                             calibration=dict(faces=len(calibration), folders=calib_note))), int8_out)
    log(f"wrote {int8_out} ({int8_out.stat().st_size / 1e6:.1f} MB)")
    result.int8_path = int8_out
    return result


def build_parser() -> argparse.ArgumentParser:
    import config

    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="a model name in config.MODELS with a PyTorch network")
    p.add_argument("out", nargs="?", type=Path, default=None,
                   help="the .onnx file (default: the entry's 'onnx' file, checkpoints/onnx/NAME.onnx)")
    p.add_argument("--int8", action="store_true", help="also write OUT-int8.onnx (static int8), if it keeps accuracy")
    p.add_argument("--lfw-dir", type=Path, default=config.LFW_ALIGNED, help="aligned LFW (View 2 is checked)")
    p.add_argument("--lfw-pairs", type=Path, default=config.LFW_ROOT / "pairs.txt")
    p.add_argument("--cfp-root", type=Path, default=config.CFP_ROOT, help="CFP with its protocol (CFP-FP is checked "
                   "when it and --cfp-dir are there)")
    p.add_argument("--cfp-dir", type=Path, default=config.CFP_ALIGNED)
    p.add_argument("--pairs", action="append", default=[], metavar="PAIRS@DIR",
                   help="another pair set to check (an LFW-style pairs file over an aligned folder)")
    p.add_argument("--no-benchmark-check", action="store_true",
                   help="check the cosine on --faces alone, without LFW/CFP (recorded in the file's metadata)")
    p.add_argument("--faces", type=Path, default=config.SAMPLE_ALIGNED,
                   help=f"aligned faces whose embeddings are compared one by one (up to {PARITY_FACES})")
    p.add_argument("--calibration", type=Path, default=config.INT8_CALIBRATION,
                   help="aligned faces (never benchmark faces) the int8 ranges are calibrated on")
    p.add_argument("--calibration-images", type=int, default=CALIBRATION_IMAGES)
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--threads", type=int, default=2, help="torch and onnxruntime threads (2 is fastest on 2 cores)")
    return p


def pair_sets_of(args: argparse.Namespace) -> dict[str, Any]:
    """The pair sets the export is checked on: LFW View 2, CFP-FP when present, and --pairs."""
    from id_rate.evaluate import cfp_protocol, pair_set

    sets: dict[str, Any] = {}
    if args.no_benchmark_check:
        return {}
    if not (args.lfw_dir.is_dir() and args.lfw_pairs.is_file()):
        raise UsageError(f"LFW is needed to check the export ({args.lfw_dir} and {args.lfw_pairs}): `make lfw` (or "
                         "`python -m facedata.fetch lfw` and `python -m facedata.prepare`), point --lfw-dir/"
                         "--lfw-pairs at your copy, or pass --no-benchmark-check to check the cosine on --faces alone")
    sets["lfw"] = pair_set(f"{args.lfw_pairs}@{args.lfw_dir}")
    for spec in args.pairs:
        if str(spec).endswith(".bin"):  # decoded crops, not files: the check embeds aligned image files
            raise UsageError(f"--pairs {spec}: a .bin holds decoded crops; the export check takes PAIRS@DIR over "
                             "aligned image files (python -m facedata.insightface_io can unpack a .bin into one)")
    if (args.cfp_root / "Protocol").is_dir() and args.cfp_dir.is_dir():
        sets["cfp_fp"] = cfp_protocol(args.cfp_root, args.cfp_dir, "FP").pairs
    for spec in args.pairs:
        ps = pair_set(spec)
        sets[ps.name] = ps
    return sets


@command(PROG)
def main(argv: Sequence[str] | None = None) -> int:
    import config

    args = build_parser().parse_args(argv)
    if args.threads < 1:
        raise UsageError(f"--threads {args.threads}: at least 1")
    if args.calibration_images < 1:
        raise UsageError(f"--calibration-images {args.calibration_images}: at least 1 (default {CALIBRATION_IMAGES})")
    torch.set_num_threads(args.threads)
    check_exportable(args.model, config.MODELS)
    out = args.out or config.MODELS[args.model].get("onnx") or config.ONNX_DIR / f"{args.model}.onnx"
    out = check_output_file(out, "output", args.overwrite, (".onnx",))  # before any data is read
    if args.int8:
        check_output_file(out.with_name(out.stem + "-int8.onnx"), "int8 output", args.overwrite, (".onnx",))
    sets = pair_sets_of(args)
    faces = []
    if args.faces.is_dir():
        faces = image_files(args.faces, recursive=True)[:PARITY_FACES]
    elif not sets:
        raise UsageError(f"--faces {args.faces}: not a folder of aligned faces (`make demo` makes data/sample_aligned)")
    calibration: list[Path] = []
    if args.int8:
        exclude = {p for ps in sets.values() for p in ps.paths if p is not None}
        calibration = calibration_paths(args.calibration, args.calibration_images, exclude)
    export_model(args.model, config.MODELS, Path(out), sets, faces, args.int8, calibration,
                 config.INT8_MAX_DROP_POINTS, config.INT8_DEFAULT_MAX_DROP_POINTS, args.overwrite)
    return 0


if __name__ == "__main__":
    sys.exit(main())
