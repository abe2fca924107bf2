"""Full study summary on 1,000,000 synthetic judgments with 1,000 bootstrap rounds, against a
FastChat-style baseline (a pandas resample-and-refit loop per round) on the same data.

FastChat's arena analysis bootstraps by calling its rating function once per round on a
resampled DataFrame. The baseline does the same work per round (resample prompts, majority per
comparison, win rates, reasons behind wins, Bradley–Terry refit with scipy.optimize) and is run
for a few rounds, then extrapolated linearly to 1,000: the output says so.

    .venv/bin/python benchmarks/bench_analysis.py [--judgments 1000000] [--rounds 1000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.frames import REASON_CODES  # noqa: E402
from analysis.summary import ablation_table, summarise  # noqa: E402
from analysis.synthetic import SimulatedPair, simulate_judgments  # noqa: E402

# The five ablation designs (docs/method.md); preferences chosen so majorities land near the
# paper's.
PAIRS = [
    SimulatedPair("factorized", "direct", 0.60, 0.56),
    SimulatedPair("zero-snr", "standard", 0.85, 0.75),
    SimulatedPair("multi-stage", "512-only", 0.70, 0.72),
    SimulatedPair("hq-finetuned", "not-finetuned", 0.57, 0.68),
    SimulatedPair("frozen-spatial", "all-finetuned", 0.52, 0.53),
]
RATERS = 5


def baseline_round(frame: pd.DataFrame, prompts: pd.Series, seed: int) -> dict[str, float]:
    """One FastChat-style bootstrap round: resample prompts with pandas, recompute everything."""
    drawn = prompts.sample(frac=1.0, replace=True, random_state=seed).reset_index(drop=True)
    draws = pd.DataFrame({"prompt_id": drawn.to_numpy(), "draw": np.arange(len(drawn))})
    sample = draws.merge(frame, on="prompt_id")
    out: dict[str, float] = {}
    for question in ("quality", "faithfulness"):
        keys = ["draw", "comparison_id", "pair"]
        counts = sample.groupby([*keys, question]).size().unstack(fill_value=0)
        majority = counts.idxmax(axis=1).where(2 * counts.max(axis=1) > counts.sum(axis=1), "none")
        majority = majority.rename("majority").reset_index()
        rates = (majority["majority"] == "a").groupby(majority["pair"]).mean()
        out.update({f"{question}:{pair}": rate for pair, rate in rates.items()})
        # reasons behind wins
        joined = sample.merge(majority, on=keys)
        winners = joined[joined[question] == joined["majority"]]
        for bit, code in enumerate(REASON_CODES[question]):
            cited = pd.Series(
                np.right_shift(winners[f"{question}_reasons"].to_numpy(), bit) & 1,
                index=winners.index,
            )
            shares = cited.groupby([winners["pair"], winners["majority"]]).mean()
            out.update({f"{question}:{code}:{k}": v for k, v in shares.items()})
        # Bradley–Terry refit on this round's majority outcomes (ties as half wins, like
        # FastChat's logistic regression on duplicated battles)
        table = majority.merge(
            sample[["pair", "variant_a", "variant_b"]].drop_duplicates(), on="pair"
        )
        out.update(_fit_bt(table, question))
    return out


def _fit_bt(table: pd.DataFrame, question: str) -> dict[str, float]:
    variants = sorted(set(table["variant_a"]) | set(table["variant_b"]))
    index = {v: k for k, v in enumerate(variants)}
    i = table["variant_a"].map(index).to_numpy()
    j = table["variant_b"].map(index).to_numpy()
    score = table["majority"].map({"a": 1.0, "b": 0.0}).fillna(0.5).to_numpy()

    def loss(theta: np.ndarray) -> float:
        d = theta[i] - theta[j]
        return float(np.sum(np.logaddexp(0, -d) * score + np.logaddexp(0, d) * (1 - score)))

    theta = minimize(loss, np.zeros(len(variants)), method="L-BFGS-B").x
    return {f"{question}:bt:{v}": theta[k] - theta.mean() for v, k in index.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--judgments", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument("--baseline-rounds", type=int, default=3)
    args = parser.parse_args()

    prompts = args.judgments // (len(PAIRS) * RATERS)
    started = time.perf_counter()
    frame = simulate_judgments(pairs=PAIRS, prompts=prompts, raters=RATERS, rater_pool=2000, seed=0)
    print(
        f"data: {len(frame):,} judgments = {len(PAIRS)} pairs × {prompts:,} prompts × {RATERS} "
        f"raters, simulated in {time.perf_counter() - started:.1f} s; "
        f"{os.cpu_count()} CPU cores visible"
    )

    started = time.perf_counter()
    summary = summarise(frame, rounds=args.rounds, seed=0)
    vectorised = time.perf_counter() - started
    print(
        f"vectorised summary ({args.rounds} bootstrap rounds over prompts: win rates, per-judgment "
        f"rates, reasons, Bradley–Terry–Davidson refits; plus κ, α, splits, raters, position "
        f"bias): {vectorised:.2f} s"
    )
    table = ablation_table(summary)
    print(
        table[["pair", "quality_win_rate", "quality_lo", "quality_hi", "faithfulness_win_rate"]]
        .round(3)
        .to_string(index=False)
    )

    prompt_ids = pd.Series(frame["prompt_id"].unique())
    lean = frame[
        ["prompt_id", "comparison_id", "pair", "variant_a", "variant_b", "quality",
         "faithfulness", "quality_reasons", "faithfulness_reasons"]
    ]  # fmt: skip
    started = time.perf_counter()
    for r in range(args.baseline_rounds):
        baseline_round(lean, prompt_ids, seed=r)
    per_round = (time.perf_counter() - started) / args.baseline_rounds
    baseline = per_round * args.rounds
    print(
        f"FastChat-style pandas loop: {per_round:.2f} s per round, measured over "
        f"{args.baseline_rounds} rounds and extrapolated linearly to {args.rounds} rounds: "
        f"{baseline:.0f} s"
    )
    print(f"ratio (baseline / vectorised): {baseline / vectorised:.0f}×")


if __name__ == "__main__":
    main()
