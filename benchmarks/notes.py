"""Why a target is missed and what would fix it, as diagnosed by profiling; kept apart from the code
that measures, because it is a person's analysis of the figures, not a figure.

A record shows its note only while its target is missed; a remark is always shown.
Re-check these after a product change: they name files, functions and figures of 2026-11-22.
"""

from __future__ import annotations

NOTES: dict[str, str] = {
    "memory": (
        "Peak memory is TensorFlow (about 480 MB) on top of what the reading phase leaves in the glibc "
        "heap: pandas frees each chunk, but glibc does not hand the memory back. Proposed: "
        "services/training.py train_model calls malloc_trim(0) (via ctypes, on glibc) after building the "
        "feature files, before Keras is imported (diagnosed 2026-11-22)."
    ),
    "pipeline": (
        "Each training step of the streaming side is a 256-row slice handed from a Python generator "
        "through tf.data.Dataset.from_generator: its per-step cost is what separates it from in-memory "
        "arrays. Yielding whole 65,536-row blocks and batching inside tf.data (flat_map over "
        "from_tensor_slices) was tried and is slower (0.5x); reading the feature file with "
        "tf.data.FixedLengthRecordDataset would keep every step in C++ (untested)."
    ),
    "prediction": (
        "Of the 13-15 s the CLI takes for a million rows, about 6 s is fixed cost, mostly importing "
        "TensorFlow to load model.keras. About 2.7 s is the forward pass: FareModel.predict_features "
        "calls the network eagerly per 8,192 rows, which is twice as slow as Keras predict. "
        "DataFrame.to_csv takes about 2 s, features 1.3 s and reading 0.8 s. Proposed: artifact.py "
        "FareModel.save also writes forward.npz (the normalisation mean and variance, each Dense kernel "
        "and bias), and FareModel.load reads it without importing keras (the network is loaded lazily, "
        "only for fine-tuning); predict_features becomes a float32 numpy forward pass over 64k-row "
        "blocks. services/prediction.py predict_file writes with pyarrow's CSVWriter (header written by "
        "hand, nulls for unpriced rows), not DataFrame.to_csv. A prototype of both took 5.2 s instead of "
        "12.9 s on the same million rows at the same load, with 413 MB peak RSS instead of 948 MB and "
        "predictions identical to the cent. That is still about 0.2-0.3x; 0.5x also needs the "
        "preprocessing patches and reading on a second thread (diagnosed 2026-11-22)."
    ),
    "preprocessing": (
        "The floor is a multi-threaded pyarrow.csv.read_csv: 0.16-0.42 s per million rows here, depending"
        " on load. Per million rows the product spends about 0.55 s reading (the single-threaded "
        "streaming reader plus to_pandas), 0.48 s cleaning (0.25 s of it DataFrame.duplicated over seven "
        "columns) and 0.8 s on features (about half of it strided column writes `out[:, k] = ...` into a "
        "C-ordered float32 matrix, plus eleven float64 haversines). Proposed: core/features.py "
        "compute_features fills a (N_FEATURES, n) buffer and returns its transpose made contiguous, and "
        "measures distances to the fixed PLACES on a flat local projection (within 60 m of haversine in "
        "the box; bump FEATURE_VERSION); core/cleaning.py clean_chunk finds duplicates with a uint64 row "
        "hash, confirmed by DataFrame.duplicated on only the rows that share a hash; "
        "services/feature_cache.py build_feature_file reads the next chunk on a thread. Prototyped "
        "together: 2.04 s to 1.24 s (interleaved runs, idle machine), still 4-7x the floor. Reaching 2.5x"
        " would take cleaning and features on Arrow arrays without pandas, and both cores (diagnosed "
        "2026-11-22)."
    ),
    "quality": (
        "The network trains with a constant learning rate and Huber delta 5: at 1M rows it stops after 9 "
        "epochs with its best at epoch 3 ($1.672, 0.720x the line), and it gains almost nothing from ten "
        "times the data ($1.680 at 100k). Other models on the same features and rows: "
        "HistGradientBoosting with absolute error $1.651 at 100k and $1.631 at 1M; the same network with "
        "Huber delta 1, ReduceLROnPlateau(factor 0.3, patience 2) and early-stopping patience 8: $1.655 "
        "at 100k (0.718x) and $1.627 at 1M (0.701x, still improving at epoch 27). So the features are not"
        " what holds it back: the rest is the simulator's trip noise at 100k, and the training schedule "
        "at 1M. Proposed: core/model.py compile_model uses keras.losses.Huber(delta=1.0); "
        "services/training.py train_model adds keras.callbacks.ReduceLROnPlateau(monitor='val_mae', "
        "factor=0.3, patience=2, min_lr=1e-5) beside the EarlyStopping; settings.py "
        "TrainingSettings.patience defaults to 8. None of this is tuned to the simulator's formula: a "
        "small delta resists the heavy-tailed fares of real rides (diagnosed 2026-11-22)."
    ),
    "quality_1m": (
        "Same cause and patch as quality. Here the network stops after 9 epochs with its best at epoch 3; "
        "with Huber delta 1, ReduceLROnPlateau and patience 8 the same network on the same rows reaches "
        "$1.627 (0.701x the line) and was still improving at epoch 27, where HistGradientBoosting with "
        "absolute error reaches $1.631 (diagnosed 2026-11-22)."
    ),
    "startup": (
        "Start-up is dominated by imports done before the command runs. Profile with `python -X "
        "importtime -m taxifare_cli --help` and move the heaviest module-level import of cli/ into the "
        "command that needs it (docs/architecture.md: no pandas or TensorFlow at import)."
    ),
}

REMARKS: dict[str, str] = {
    "memory": (
        "What the growth from 100k to 5M rows is: glibc heap retention from the reading phase, not data "
        "held. In separate runs of the 5M training (sampled every 0.5 s), the peak was 1,078 MiB as is, "
        "818 MiB with MALLOC_MMAP_THRESHOLD_=131072, and 800 MiB with malloc_trim(0) called after "
        "build_feature_file, where the 1M run sits at 790-800 MiB (checked 2026-11-22)."
    ),
}
