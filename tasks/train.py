"""Stage ``train``: a TF Hub backbone (through ``hub.KerasLayer`` on tf_keras) plus a softmax head.

Phase 1 trains the head with the backbone frozen, on the features stage's output: computed once per
image and reused every epoch (the seed notebook recomputed them every epoch and every validation pass).
Phase 2 (``train.fine_tune_epochs`` > 0) unfreezes the top of the backbone, recompiles with a low
learning rate, keeps BatchNorm in inference mode and trains with augmentation.
Train on Train, validate on Validation; Test is never read here. Every epoch is checkpointed under
``data/checkpoints/<key>`` (outside the DVC outs), so a rerun after an interruption resumes from
the last complete epoch, to exactly the weights of an uninterrupted run (:func:`fit_epochs`); the
key (:func:`run_key`) keeps a run from resuming another's. The export is a SavedModel that takes
raw uint8 images of any size and returns class probabilities, with ``class_names.json`` inside its
folder.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tasks import backbones, code_deps, dataset, paths, precision, reports
from tasks.contract import Output, Stage, StageResult
from tasks.errors import StageError, logger
from tasks.feature_files import SplitFeatures, load
from tasks.features import build_extractor
from tasks.files import atomic_outputs, read_json, tree_hash, write_json
from tasks.params.model import ModelParams, handle_kind
from tasks.params.train import TrainParams
from tasks.reports import label_audit
from tasks.reports.training import TrainingInfo

log = logger("train")
PHASES = ("head", "fine_tune")
METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")  # per epoch, in models/history.json


@dataclass(frozen=True)
class TrainResult(StageResult):
    """What training produced."""

    model_dir: Path
    history: list[dict[str, Any]]
    model: Any = field(default=None, repr=False)  # the trained tf_keras model, in memory (not shown in the flow)


def setup(params: TrainParams, strategy: Any) -> str:
    """Seeds from params, deterministic ops on one replica; reports the devices used; returns the
    precision to train in (``tasks.precision``)."""
    import tensorflow as tf
    import tf_keras

    tf_keras.utils.set_random_seed(params.seed)
    if strategy.num_replicas_in_sync == 1:
        # Same params, same machine, same numbers. Not under MirroredStrategy: its replicas' random
        # ops (dropout) refuse deterministic mode, and its all-reduce order varies anyway.
        tf.config.experimental.enable_op_determinism()
    gpus = tf.config.list_physical_devices("GPU")
    log.info("devices: %s", ", ".join(d.name for d in gpus) or "CPU only")
    chosen, why = precision.choose(params.mixed_precision, gpus=len(gpus))
    log.info("precision: %s (%s); the exported model stays float32", chosen, why)
    return chosen


def build_head(feature_dim: int, n_classes: int, dropout: float) -> Any:
    """Dropout and a softmax Dense layer (float32 output, also under mixed precision)."""
    import tf_keras

    features = tf_keras.Input((feature_dim,), name="features")
    # rng_type="stateful": its draws come from a tf.random.Generator that fit_epochs reseeds each epoch
    x = tf_keras.layers.Dropout(dropout, rng_type="stateful")(features)
    out = tf_keras.layers.Dense(n_classes, activation="softmax", dtype="float32", name="probabilities")(x)
    return tf_keras.Model(features, out, name="head")


def build_classifier(backbone: Any, head: Any, image_size: int) -> Any:
    """The whole model: raw uint8 images in, class probabilities out."""
    import tf_keras

    extractor = build_extractor(backbone, image_size)
    return tf_keras.Model(extractor.input, head(extractor.output), name="classifier")


def _compile(model: Any, learning_rate: float, loss_scaling: bool = False) -> None:
    import tf_keras

    optimizer = tf_keras.optimizers.Adam(learning_rate=learning_rate)
    model.compile(
        # float16 gradients underflow without it; the rewrite does not add it (bfloat16 needs none)
        optimizer=tf_keras.mixed_precision.LossScaleOptimizer(optimizer) if loss_scaling else optimizer,
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )


def epoch_seed(seed: int, phase: str, epoch: int) -> int:
    """The seed of one epoch of one phase: its order, augmentation and dropout all come from it."""
    return int.from_bytes(hashlib.sha256(f"{seed}/{phase}/{epoch}".encode()).digest()[:4], "big") >> 2


def reseed_dropout(model: Any, seed: int) -> None:
    """Restart the draws of every stateful-generator layer in ``model`` (the head's dropout) from ``seed``.

    The generator's state is a variable that the traced train function reads, so this needs no
    retrace (dropping ``model.train_function`` instead cost about 2 s per epoch).
    """
    for layer in model.submodules:
        generator = getattr(getattr(layer, "_random_generator", None), "_generator", None)
        if generator is not None:
            generator.reset_from_seed(seed)


def fit_epochs(run: Run, model: Any, phase: str, epochs: int, fit_one: Callable[[int, int, Any], Any]) -> None:
    """Train ``model`` (compiled) for ``epochs`` epochs of ``phase``, resuming after the last one saved.

    Each epoch is one ``fit_one(epoch, seed, callbacks)`` call (a ``fit`` of that epoch only), after
    the global seed and the dropout generators are set to :func:`epoch_seed` (:func:`reseed_dropout`);
    ``fit_one`` builds the epoch's shuffled, augmented data from ``seed``. So an epoch trains the
    same whether the run started before it or resumed at it.
    After each epoch its metrics (``epoch-NNNN.json``) and then the weights and optimizer state
    (``ckpt-N``) are saved in ``checkpoints/<phase>``; an epoch whose checkpoint is missing is redone.
    """
    import tensorflow as tf
    import tf_keras

    folder = run.checkpoints / phase
    folder.mkdir(parents=True, exist_ok=True)
    state = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
    manager = tf.train.CheckpointManager(state, str(folder), max_to_keep=1)
    done = 0
    if manager.latest_checkpoint:
        # expect_partial: Adam's slots are restored when the next step makes them; if none follows (the
        # head had finished), TensorFlow would warn about them at exit
        state.restore(manager.latest_checkpoint).expect_partial()
        done = int(manager.latest_checkpoint.rsplit("-", 1)[1])
        log.info("%s: resuming after epoch %d of %d", phase, done, epochs)
    callbacks = [tf_keras.callbacks.TensorBoard(str(run.tensorboard / phase))]
    for epoch in range(done, epochs):
        seed = epoch_seed(run.params.seed, phase, epoch)
        tf_keras.utils.set_random_seed(seed)
        reseed_dropout(model, seed)
        metrics = fit_one(epoch, seed, callbacks).history
        row = {"epoch": epoch + 1, **{k: float(metrics[k][-1]) for k in METRICS}}
        log.info("%s: epoch %d/%d: %s", phase, epoch + 1, epochs, ", ".join(f"{k} {row[k]:.4f}" for k in METRICS))
        staged = folder / f"epoch-{epoch + 1:04d}.json.tmp"
        write_json(staged, row)
        staged.replace(folder / f"epoch-{epoch + 1:04d}.json")
        manager.save(checkpoint_number=epoch + 1)


def _fingerprint(folder: Path, names: tuple[str, ...]) -> list[str]:
    """sha256 of each named file under ``folder`` that exists (a SavedModel: its graph and variable index)."""
    return [hashlib.sha256((folder / n).read_bytes()).hexdigest() for n in names if (folder / n).is_file()]


def run_key(model: ModelParams, params: TrainParams, processed: Path, handle: str, excluded: frozenset[str]) -> str:
    """What a checkpoint may be resumed by: the same params, data, code and backbone.

    The code is the train stage's code deps (its import closure, as dvc.yaml lists them); the backbone
    is the resolved handle, and for a folder its ``saved_model.pb`` and variable index (which holds a
    checksum of every tensor).
    """
    summary = (processed / paths.PREPROCESS_SUMMARY_NAME).read_text()
    code = [[f, (code_deps.REPO / f).read_text()] for f in code_deps.import_closure(__name__)]
    backbone = [handle, *_fingerprint(Path(handle), ("saved_model.pb", "variables/variables.index"))]
    blob = json.dumps([asdict(params), asdict(model), summary, code, backbone, sorted(excluded)], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def checkpoint_folder(checkpoints: Path, key: str) -> Path:
    """This run's checkpoint folder; checkpoints of any other run are removed, saying so."""
    for other in sorted(p for p in checkpoints.glob("*") if p.name != key):
        log.info("removed %s: checkpoints of another run (its params, data, code or backbone differ)", other)
        shutil.rmtree(other, ignore_errors=True)
    ckpt = checkpoints / key
    if ckpt.is_dir():
        log.info("resuming from %s (a run with the same params, data, code and backbone stopped there)", ckpt)
    ckpt.mkdir(parents=True, exist_ok=True)
    return ckpt


def read_history(ckpt: Path) -> list[dict[str, Any]]:
    """Per-epoch metrics of both phases, numbered across phases (``step``)."""
    rows: list[dict[str, Any]] = []
    for phase in PHASES:
        for row_file in sorted((ckpt / phase).glob("epoch-*.json")):
            rows.append({"step": len(rows) + 1, "phase": phase, **read_json(row_file, "train")})
    return rows


def plot_curves(history: list[dict[str, Any]], out: Path) -> None:
    """Loss and accuracy per epoch for both phases, with the phase boundary marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    steps = [h["step"] for h in history]
    for ax, metric in zip(axes, ("loss", "accuracy")):
        ax.plot(steps, [h[metric] for h in history], "o-", label=f"train {metric}")
        ax.plot(steps, [h[f"val_{metric}"] for h in history], "o-", label=f"validation {metric}")
        boundary = [h["step"] for h in history if h["phase"] == "fine_tune"]
        if boundary:
            ax.axvline(boundary[0] - 0.5, color="grey", linestyle="--", label="fine-tuning starts")
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def export(model: Any, image_size: int, class_names: list[str], out: Path) -> None:
    """Save a SavedModel whose serving signature takes raw uint8 images of any size."""
    import tensorflow as tf
    import tf_keras

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")])
    def serve(images):
        same = tf.logical_and(tf.shape(images)[1] == image_size, tf.shape(images)[2] == image_size)
        images = tf.cond(same, lambda: images, lambda: dataset.resize(images, image_size))
        images = tf.ensure_shape(images, [None, image_size, image_size, 3])
        return {"probabilities": tf.cast(model(images, training=False), tf.float32)}

    module = tf.Module()  # the model plus what a reader needs to feed it
    # a new Model on the same layers: the weights without the optimizer's slots or the compiled metrics, which
    # differ between a resumed run and an uninterrupted one (the export is declared byte-reproducible)
    module.model = tf_keras.Model(model.inputs, model.outputs, name=model.name)
    module.image_size = tf.Variable(image_size, trainable=False, name="image_size")
    tf.saved_model.save(module, str(out), signatures={"serving_default": serve})
    _content_uuid(out / "fingerprint.pb")
    write_json(out / paths.CLASS_NAMES_NAME, class_names)


def _content_uuid(fingerprint: Path) -> None:
    """Replace the random ``uuid`` TensorFlow writes into a SavedModel's ``fingerprint.pb`` with one
    made from the fingerprint's content hashes: the same model, the same bytes (a forced rerun of
    train must not make DVC rerun evaluate and promote)."""
    from tensorflow.core.protobuf import fingerprint_pb2

    fp = fingerprint_pb2.FingerprintDef.FromString(fingerprint.read_bytes())
    fp.uuid = ""
    fp.uuid = str(int(hashlib.sha256(fp.SerializeToString(deterministic=True)).hexdigest()[:32], 16))
    fingerprint.write_bytes(fp.SerializeToString(deterministic=True))


def make_strategy(kind: str) -> Any:
    """The tf.distribute strategy for ``train.distribution``.

    ``auto``: MirroredStrategy over all GPUs when there are two or more, else the default strategy;
    ``none``: the default strategy; ``mirrored``: MirroredStrategy over all GPUs, or over all logical
    CPU devices when there is no GPU; ``multi_worker``: MultiWorkerMirroredStrategy configured by TF_CONFIG.
    """
    import os

    import tensorflow as tf

    if kind == "multi_worker":  # before anything starts TensorFlow's context (listing devices does)
        if not os.environ.get("TF_CONFIG"):
            raise StageError(
                "train.distribution is multi_worker but TF_CONFIG is not set; set TF_CONFIG on every "
                "worker (cluster and task index) or use auto"
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    if kind == "mirrored":
        return tf.distribute.MirroredStrategy(gpus or [d.name for d in tf.config.list_logical_devices("CPU")])
    if kind == "auto" and len(gpus) > 1:
        return tf.distribute.MirroredStrategy(gpus)
    return tf.distribute.get_strategy()


@dataclass
class Run:
    """What the phases of one training run share."""

    model: ModelParams
    params: TrainParams
    strategy: Any
    batch: int  # global batch (train.batch_size per replica)
    checkpoints: Path  # this run's folder under data/checkpoints
    tensorboard: Path  # the staged TensorBoard output
    train_files: list[str]
    val_files: list[str]
    train_features: SplitFeatures
    val_features: SplitFeatures
    class_names: list[str]
    excluded: frozenset[str] = frozenset()  # Train images left out (train.exclude_label_issues)
    compute: str = precision.FLOAT32  # the precision both phases compute in (tasks.precision)
    backbone_sha256: str | None = None  # see training.TrainingInfo


def phase1(run: Run, handle: str) -> tuple[Any, Any]:
    """Train the head on the features stage's vectors of the frozen backbone.

    Returns:
        ``(frozen backbone, head)``.
    """
    frozen = backbones.load_backbone(handle)
    x_tr, y_tr = run.train_features.x, run.train_features.y
    x_val, y_val = run.val_features.x, run.val_features.y
    log.info(
        "phase 1 (%s): %d train / %d validation feature vectors of size %d",
        run.compute,
        len(x_tr),
        len(x_val),
        x_tr.shape[1],
    )
    import tf_keras

    with run.strategy.scope():
        head = build_head(x_tr.shape[1], len(run.class_names), run.model.dropout)
        # trained through a wrapper on the same layers, so that its optimizer and metrics are the wrapper's: the
        # head in the exported model carries only weights, whether phase 1 ran here or was resumed
        trainer = tf_keras.Model(head.input, head.output, name="head_trainer")
        _compile(trainer, run.params.learning_rate)

    def fit_one(epoch: int, seed: int, callbacks: list[Any]) -> Any:  # the head's data is in memory
        return trainer.fit(
            x_tr,
            y_tr,
            validation_data=(x_val, y_val),
            initial_epoch=epoch,
            epochs=epoch + 1,
            batch_size=run.batch,
            shuffle=True,
            verbose=0,  # one line per epoch: fit_epochs' own
            callbacks=callbacks,
        )

    fit_epochs(run, trainer, "head", run.params.epochs, fit_one)
    return frozen, head


def phase2(run: Run, handle: str, head: Any) -> Any:
    """Fine-tune the top of a trainable copy of the backbone, with the phase-1 head, at a low learning rate."""
    import tensorflow as tf

    tp, size = run.params, run.model.image_size
    with run.strategy.scope():
        tunable = backbones.load_backbone(handle, trainable_top=tp.fine_tune_layers)
        model = build_classifier(tunable, head, size)
        # recompile after changing what is trainable
        _compile(model, tp.fine_tune_learning_rate, loss_scaling=run.compute == precision.FLOAT16)
    log.info("phase 2 (%s): %d trainable backbone weights", run.compute, len(tunable.trainable_weights))
    # Restored Hub functions fail on a ragged last batch split over replicas, so several
    # replicas see whole batches only: the validation metric then skips validation_images % batch images.
    whole = run.strategy.num_replicas_in_sync > 1
    validation_images = len(run.val_features.paths)
    if whole and validation_images % run.batch:
        log.warning(
            "phase 2 validation scores %d of %d images per epoch (whole batches under %d replicas)",
            validation_images - validation_images % run.batch,
            validation_images,
            run.strategy.num_replicas_in_sync,
        )
    val_ds = dataset.make_dataset(run.val_files, size, run.batch, drop_remainder=whole)
    options = tf.data.Options()
    if isinstance(run.strategy, tf.distribute.MultiWorkerMirroredStrategy):
        # Sharding by file gives each worker whatever its files hold: unequal step counts, and no whole
        # validation batch on small sets. Every worker reads everything; each replica takes its slice.
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF

    def fit_one(epoch: int, seed: int, callbacks: list[Any]) -> Any:  # this epoch's order and augmentation
        train_ds = dataset.make_dataset(
            run.train_files,
            size,
            run.batch,
            shuffle_seed=seed,
            augmentation={"flip": tp.augment_flip, "brightness": tp.augment_brightness, "seed": seed},
            drop_remainder=whole,
            exclude=run.excluded,
        )
        return model.fit(
            train_ds.with_options(options),
            validation_data=val_ds.with_options(options),
            initial_epoch=epoch,
            epochs=epoch + 1,
            verbose=0,  # one line per epoch: fit_epochs' own
            callbacks=callbacks,
        )

    fit_epochs(run, model, "fine_tune", tp.fine_tune_epochs, fit_one)
    return model


def write_outputs(run: Run, model: Any, staging: Path, outputs: dict[str, Path]) -> list[dict[str, Any]]:
    """Export the model (with class_names.json and training.json), the history and the curves into ``staging``."""
    history = read_history(run.checkpoints)
    exported = staging / outputs["model_dir"].name
    export(model, run.model.image_size, run.class_names, exported)
    info = TrainingInfo(
        handle=run.model.handle,
        image_size=run.model.image_size,
        model=asdict(run.model),
        train=asdict(run.params),
        train_images=len(run.train_features.paths),
        validation_images=len(run.val_features.paths),
        final_epoch=history[-1],
        backbone_sha256=run.backbone_sha256,
    )
    reports.write(exported / paths.TRAINING_INFO_NAME, info)
    write_json(staging / outputs["history"].name, history)
    plot_curves(history, staging / outputs["curves"].name)
    return history


def fit(run: Run, handle: str) -> Any:
    """Phase 1, then phase 2 when asked, in the run's precision; returns the classifier."""
    with precision.rewrite(run.compute):
        start = time.perf_counter()
        frozen, head = phase1(run, handle)
        log.info("phase 1 took %.1f s", time.perf_counter() - start)
        if not run.params.fine_tune_epochs:
            return build_classifier(frozen, head, run.model.image_size)
        start = time.perf_counter()
        classifier = phase2(run, handle, head)
        log.info("phase 2 took %.1f s", time.perf_counter() - start)
    return classifier


def kept_train_rows(
    rows: SplitFeatures, excluded: frozenset[str], class_names: list[str], label_issues: Path
) -> SplitFeatures:
    """Train's rows less those ``train.exclude_label_issues`` leaves out; refused when a class would have none."""
    if not excluded:
        return rows
    kept = rows.without(excluded)
    log.info("train.exclude_label_issues: %d Train images flagged by the audit are left out", len(rows.y) - len(kept.y))
    counts = np.bincount(kept.y, minlength=len(class_names))
    if counts.min() == 0:
        left = "no Train images" if not kept.paths else f"no Train image of {class_names[int(counts.argmin())]}"
        raise StageError(
            f"train.exclude_label_issues: leaving out the Train images flagged in {label_issues} leaves {left}; "
            "check that list, or set train.exclude_label_issues: false"
        )
    return kept


def train(
    processed: Path,
    features_dir: Path,
    label_issues: Path,
    model_dir: Path,
    tensorboard: Path,
    history: Path,
    curves: Path,
    checkpoints: Path,
    backbone_cache: Path,
    model: ModelParams,
    params: TrainParams,
) -> TrainResult:
    """Train and export the classifier.

    Args:
        processed: the preprocess output (shards and class_names.json).
        features_dir: the features stage's output (phase 1's inputs).
        label_issues: the audit's list; its Train rows are left out when ``params.exclude_label_issues``.
        model_dir, tensorboard, history, curves: the outputs (replaced together; they share ``models/``
            with the registry's copy ``models/production``, which is left alone).
        checkpoints: where per-epoch checkpoints survive an interruption.
        backbone_cache: where built-in backbones are exported as SavedModels.
        model: the ``model`` section (backbone handle, image size, head).
        params: the ``train`` section.
    """

    outputs = {"model_dir": model_dir, "tensorboard": tensorboard, "history": history, "curves": curves}
    # The strategy first: MultiWorkerMirroredStrategy must set up collective ops before any op runs.
    strategy = make_strategy(params.distribution)
    # Resolve (and on first use export) the backbone before seeding: exporting a built-in draws from the
    # global random state, so seeding first made a run with the cache differ from a run without it.
    handle = backbones.resolve(model.handle, model.image_size, params.seed, backbone_cache, model.download_timeout_s)
    log.info("backbone %s (%s)", model.handle, handle)
    chosen = setup(params, strategy)
    batch = params.batch_size * strategy.num_replicas_in_sync
    log.info("%s with %d replica(s); global batch %d", type(strategy).__name__, strategy.num_replicas_in_sync, batch)
    class_names = read_json(processed / paths.CLASS_NAMES_NAME, "preprocess")
    excluded = frozenset(label_audit.label_issue_paths(label_issues, "Train") if params.exclude_label_issues else ())
    train_features = kept_train_rows(load(features_dir, "Train"), excluded, class_names, label_issues)
    ckpt = checkpoint_folder(checkpoints, run_key(model, params, processed, handle, excluded))
    with atomic_outputs(list(outputs.values())) as staging:
        run = Run(
            model=model,
            params=params,
            strategy=strategy,
            batch=batch,
            checkpoints=ckpt,
            tensorboard=staging / outputs["tensorboard"].name,
            train_files=dataset.shard_files(processed, "Train"),
            val_files=dataset.shard_files(processed, "Validation"),
            train_features=train_features,
            val_features=load(features_dir, "Validation"),
            excluded=excluded,
            class_names=class_names,
            compute=chosen,
            backbone_sha256=None if handle_kind(model.handle) == "builtin" else tree_hash(Path(handle)),
        )
        classifier = fit(run, handle)
        epochs = write_outputs(run, classifier, staging, outputs)
    shutil.rmtree(ckpt, ignore_errors=True)  # finished: nothing left to resume
    last = epochs[-1]
    log.info("final epoch: val_accuracy %.4f, val_loss %.4f", last["val_accuracy"], last["val_loss"])
    return TrainResult(model_dir=model_dir, history=epochs, model=classifier)


STAGE = Stage(
    "train",
    train,
    deps={"processed": paths.PROCESSED_DIR, "features_dir": paths.FEATURES_DIR, "label_issues": paths.LABEL_ISSUES},
    # the model is byte-reproducible on one machine (op determinism; `export`); TensorBoard's event files
    # and the history and curves carry times
    outs={
        "model_dir": Output(paths.MODEL_DIR),
        "tensorboard": Output(paths.TENSORBOARD_DIR, reproducible=False),
        "history": Output(paths.HISTORY, "plots", plot={"x": "step", "y": "val_accuracy"}, reproducible=False),
        "curves": Output(paths.CURVES, "plots", reproducible=False),
    },
    work={"checkpoints": paths.CHECKPOINTS_DIR, "backbone_cache": paths.BACKBONES_DIR},
    params={"model": "model", "params": "train"},
)
