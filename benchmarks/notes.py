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
        "Measured 2026-12-01 (`python -m benchmarks --only quality`, load 3.9-6.1 from other test runs; "
        "the MAE does not depend on load), with Huber delta 1, ReduceLROnPlateau and patience 8 now in "
        "the product: the network reaches $1.656 at 100k (24 epochs, best at 16; $1.680 with Huber "
        "delta 5 and a constant rate on 2026-11-22). HistGradientBoostingRegressor(loss='absolute_error',"
        " random_state=42) on the same 35 features of the same 97,337 clean rows reaches $1.655: ratio "
        "1.001 against the 0.98 target, and the line on distance $2.306 (0.718 against 0.7). The "
        "reference is not a weak one: it runs to its default cap of 100 iterations, and allowed 300 it "
        "stops early at 184 with $1.652 (checked the same day on the same rows). The original network on"
        " the product's features reaches $1.770. So at 100k the network and boosting get the same from "
        "these features and rows, and 0.98x means $1.622. Not tried yet (issue 12 item 6): an average of"
        " a few networks trained from different seeds as one artifact, a log-fare target, a larger "
        "network."
    ),
    "quality_1m": (
        "The row is from 2026-11-22 (Huber delta 5, constant rate: 9 epochs, best at 3), before the Huber"
        " delta 1 and plateau schedule and before the HistGradientBoosting reference. Re-run on "
        "2026-12-01 (`python -m benchmarks --only quality_1m`, load 2.2-11 from other test runs and my own side checks), stopped "
        "after 30 minutes while the original network was still training, so no record was written; the"
        " product's training had finished: val MAE $1.627 as the CLI reports it on the 973,169 clean val"
        " rows (25 epochs, best at 17, 1,389 s under that load; at 100k the reported figure equals the "
        "benchmark's own MAE to 1e-8). HistGradientBoostingRegressor(loss='absolute_error', "
        "random_state=42) on the same 35 features of the same 973,586 rows, run separately the same day:"
        " $1.638 at its 100-iteration cap, so a ratio of 0.993 against the 0.98 target."
    ),
    "workflow": (
        "The two steps run in parallel are far from even: timed one after the other on the benchmark's "
        "February (100k rides, 5 epochs, load 0.7), prepare (drift, data already held) took 1.42 s, "
        "evaluating Production 0.13 s (numpy forward pass over val, no TensorFlow) and training the "
        "challenger 20.6 s, TensorFlow already on both cores. Running the 0.13 s beside the 20.6 s saves "
        "almost nothing (the ratio was 1.04 that morning); the 0.8 was set when evaluating meant loading "
        "Keras and pandas. Drift now runs beside the training instead of before it (services/workflow.py "
        "evaluate_champion), which brought the ratio to 0.85 (12.0 s against 14.2 s, load 0.9-2.3): what "
        "is left in parallel is 1.5 s beside the training. A shorter month now means a shorter training "
        "(see quality: a schedule that converges in fewer epochs). Measured with the steps called one by one on the "
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
        "What the growth from 100k to 5M rows was: glibc heap retention from the reading phase, not data "
        "held (1,078-1,090 MiB at 5M against 790-940 MiB at 100k-1M, 2026-11-22). Since 2026-12-01 "
        "services/feature_cache.py calls malloc_trim(0) once the feature file is built, before the "
        "epochs: 816 MiB at 5M against 785 MiB at 100k and 837 MiB at 1M in the run of that day."
    ),
}
