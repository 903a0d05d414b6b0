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
        "No TensorFlow and no DataFrame.to_csv any more: the weights come from weights.npz, the fares "
        "go out through pyarrow's CSV writer (0.3 s a million rows instead of 1.9 s), and the next "
        "chunk is read, cleaned and turned into features on a second thread (services/prediction.py "
        "predict_file, files/read_ahead.py) while the network prices the one before. Per million rows "
        "at a load of 2-4 on the 2 cores (other test runs): reading 0.7-1.0 s, typing and cleaning "
        "0.25 s, features 1.3-1.6 s on the reading thread; the forward pass 1.5-1.8 s and writing "
        "0.3 s on the other; 1.4-1.9 s of fixed cost (start-up with pandas and pyarrow, model load). "
        "In process the network's thread waits only 0.8 s of 4.3-4.7 s for chunks (0.5 s of it for "
        "the first): the forward pass is what holds it back. It multiplies in float64 on purpose "
        "(core/network.py): float32 products from OpenBLAS change in their last bits with the number "
        "of rows multiplied together (no split of 4,096 rows gave the same bits, in either "
        "orientation), so a ride priced alone (model predict --ride, GET /predict) would now and then "
        "differ by a cent from the same ride in a file; float64 costs about 1.6x the float32 pass, and "
        "Keras' predict, the reference, runs float32 on both cores. Left to try: a float32 pass whose "
        "rides near a half cent (a few float32 ulps of the output, computed as a bound) are priced "
        "again in float64, in every path alike, keeping the cents equal; reading only the ride columns; "
        "and a run on an idle machine (diagnosed 2026-12-01)."
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
    "workflow": (
        "The two steps run in parallel are far from even: timed one after the other on the benchmark's "
        "February (100k rides, 5 epochs, load 0.7), prepare (drift, data already held) took 1.42 s, "
        "evaluating Production 0.13 s (numpy forward pass over val, no TensorFlow) and training the "
        "challenger 20.6 s, TensorFlow already on both cores. Running the 0.13 s beside the 20.6 s cannot "
        "save more than 0.6 %, so the ratio sits at 1.0 within noise, whatever the engine does; the 0.8 "
        "was set when evaluating meant loading Keras and pandas. What would shorten a month is a shorter "
        "training (see quality: a schedule that converges in fewer epochs) or drift computed beside "
        "training rather than before it (1.4 s). Measured with the steps called one by one on the "
        "benchmark's snapshot (diagnosed 2026-12-01). Prefect: its overhead is the first flow run of "
        "a process, which starts Prefect's temporary server (about 15-25 s here, under load); a second "
        "flow run in the same process, or any run against a running `prefect server start` "
        "(PREFECT_API_URL), costs about nothing beside the local engine (18.3 s against 17.1-26.1 s "
        "for the local engine in the run of 2026-12-01, load 2-3 from other test runs)."
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
