#!/usr/bin/env python3
"""Writes a run's metrics as CSV and plots test accuracy and train loss over rounds.

Usage: plot_run.py RUN_STATUS.json OUT.png [--perplexity]
(input: `tessera --json run status RUN`). --perplexity (language-model runs): plot the
federated held-out perplexity, exp(token-weighted mean held-out loss), instead of accuracy.
The CSV lands next to the PNG; the plot is drawn by gnuplot (Debian's gnuplot-nox). For a
run with differential privacy, epsilon.png next to it plots epsilon spent over rounds
against the dataset's budget; with record-level DP, site_epsilon.png (and site_epsilon.csv)
plots each site's own epsilon over rounds, as the sites reported it, against their budgets.
"""
import json
import os
import shutil
import subprocess
import sys


def main():
    status_path, png = sys.argv[1], sys.argv[2]
    perplexity = "--perplexity" in sys.argv[3:]
    with open(status_path) as f:
        status = json.load(f)
    rows = [r for r in status.get("rounds", []) if r.get("state") == "ROUND_COMPLETED"]
    csv = os.path.splitext(png)[0] + ".csv"
    with open(csv, "w") as f:
        f.write("round,clients,train_loss,test_accuracy,test_loss,bytes_down,bytes_up,seconds,"
                "epsilon\n")
        for r in rows:
            f.write("{},{},{},{},{},{},{},{},{}\n".format(
                r["round"], r["reported"], r["train_loss"], r["eval_accuracy"],
                r["eval_loss"], r["bytes_down"], r["bytes_up"], r["seconds"],
                r.get("privacy", {}).get("epsilon", "")))
    # Under secure aggregation or DP there is no training loss: plot the test loss instead.
    secure = bool(rows) and all("secagg" in r or "privacy" in r for r in rows)
    loss_col, loss_name = (5, "test loss") if secure else (3, "train loss")
    if not shutil.which("gnuplot"):
        print("plot_run: gnuplot not found; wrote", csv)
        return
    if perplexity:
        plot_perplexity(status, rows, csv, png)
        return
    script = f"""
set terminal pngcairo size 900,500 noenhanced
set output '{png}'
set datafile separator ','
set title 'run {status.get("run_id")} ({status.get("name")})'
set xlabel 'round'
set ylabel 'test accuracy (%)'
set y2label '{loss_name}'
set ytics nomirror
set y2tics
set key center right
set xtics 1
set grid
plot '{csv}' using 1:($4*100) skip 1 with linespoints lw 2 title 'global test accuracy', \\
     '{csv}' using 1:{loss_col} skip 1 axes x1y2 with linespoints lw 2 title '{loss_name}'
"""
    subprocess.run(["gnuplot"], input=script.encode(), check=True)
    print("plot_run: wrote", png, "and", csv)
    budget = status.get("privacy", {}).get("epsilon_budget")
    if budget is not None and rows:
        eps_png = os.path.join(os.path.dirname(png) or ".", "epsilon.png")
        script = f"""
set terminal pngcairo size 900,500 noenhanced
set output '{eps_png}'
set datafile separator ','
set title 'privacy spent on dataset {status["privacy"].get("dataset")} (delta {status["privacy"].get("delta")})'
set xlabel 'round'
set ylabel 'epsilon'
set yrange [0:*]
set xtics 1
set grid
set key bottom right
plot '{csv}' using 1:9 skip 1 with linespoints lw 2 title 'epsilon after the round', \\
     {budget} with lines dt 2 lw 2 title 'budget'
"""
        subprocess.run(["gnuplot"], input=script.encode(), check=True)
        print("plot_run: wrote", eps_png)
    plot_sites(status, png)


def plot_perplexity(status, rows, csv, png):
    """Held-out perplexity over rounds (language models: eval_loss is the token-level loss)."""
    script = f"""
set terminal pngcairo size 900,500 noenhanced
set output '{png}'
set datafile separator ','
set title 'run {status.get("run_id")} ({status.get("name")}): federated held-out perplexity'
set xlabel 'round'
set ylabel 'held-out perplexity'
set xtics 1
set grid
set key top right
plot '{csv}' using 1:(exp($5)) skip 1 with linespoints lw 2 title 'perplexity (all partners, token-weighted)'
"""
    subprocess.run(["gnuplot"], input=script.encode(), check=True)
    print("plot_run: wrote", png, "and", csv)


def plot_sites(status, png):
    """Each site's reported record-level epsilon over rounds (site_privacy of each round)."""
    rows = [r for r in status.get("rounds", []) if r.get("site_privacy")]
    if not rows:
        return
    sites = sorted({s["client"] for r in rows for s in r["site_privacy"]})
    budgets = {s["client"]: s.get("epsilon_budget") for r in rows for s in r["site_privacy"]}
    out_dir = os.path.dirname(png) or "."
    csv = os.path.join(out_dir, "site_epsilon.csv")
    with open(csv, "w") as f:
        f.write("round," + ",".join(sites) + "\n")
        for r in rows:
            by_site = {s["client"]: s for s in r["site_privacy"]}
            cells = []
            for site in sites:
                s = by_site.get(site)
                cells.append("" if s is None else str(s.get("epsilon", 0)))
            f.write("{},{}\n".format(r["round"], ",".join(cells)))
    print("plot_run: wrote", csv)
    if not shutil.which("gnuplot"):
        return
    eps_png = os.path.join(out_dir, "site_epsilon.png")
    lines = [f"'{csv}' using 1:{i + 2} skip 1 with linespoints lw 2 title '{site}'"
             for i, site in enumerate(sites)]
    distinct = sorted({b for b in budgets.values() if b})
    lines += [f"{b} with lines dt 2 lw 2 title 'budget {b:g}'" for b in distinct]
    script = f"""
set terminal pngcairo size 900,500 noenhanced
set output '{eps_png}'
set datafile separator ','
set datafile missing ''
set title 'record-level DP: epsilon of each site for its own records'
set xlabel 'round'
set ylabel 'epsilon'
set yrange [0:*]
set xtics 1
set grid
set key bottom right
plot {", ".join(lines)}
"""
    subprocess.run(["gnuplot"], input=script.encode(), check=True)
    print("plot_run: wrote", eps_png)


if __name__ == "__main__":
    main()
