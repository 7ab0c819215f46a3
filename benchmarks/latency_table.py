"""How far a per-choice latency table is from the measurement: the table a
search builds for a space whose cost is additive
(:class:`mmnas_tricks.models.resources.LatencyTable`: the base subnet's
latency plus what each choice alone changes) against a measurement of each
of ``--subnets`` random subnets, in one run on this machine (batch 1,
median of ``--repeats`` forwards, as a search measures), and what the table
costs in measurements against measuring every candidate.

Example:
    python benchmarks/latency_table.py --device cpu
Writes benchmarks/results/latency_table[_cuda].json.
"""
import argparse
import random
import statistics
import time

from common import (add_common_args, check_device, machine, result_path,
                    write_result)

DETNAS = 'configs/supernets/fcos_detnas-shufflenetv2_fpn_gn-head_12e_digits.py'


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default=DETNAS)
    parser.add_argument('--subnets', type=int, default=12)
    parser.add_argument('--repeats', type=int, default=10)
    parser.add_argument('--seed', type=int, default=0)
    add_common_args(parser)
    args = parser.parse_args()
    device = check_device(args.device)
    from mmnas_tricks.models.mutables import sample_subnet
    from mmnas_tricks.models.resources import (LatencyTable, input_size,
                                               measure_latency)
    from mmnas_tricks.utils import build_model, load_config
    cfg = load_config(args.config)
    model = build_model(cfg).to(device)
    shape = input_size(cfg).shape

    def measure(subnet):
        return measure_latency(
            model, subnet, shape, repeats=args.repeats, warmup=2)

    start = time.perf_counter()
    table = LatencyTable(model, measure, check=0)
    build_seconds = time.perf_counter() - start
    if table.why_not is not None:
        raise SystemExit(f'{args.config}: no table ({table.why_not})')
    rng = random.Random(args.seed)
    rows = []
    for _ in range(args.subnets):
        subnet = sample_subnet(model, rng, apply=False)
        start = time.perf_counter()
        measured = measure(subnet)
        seconds = time.perf_counter() - start
        predicted = table.predict(subnet)
        rows.append(
            dict(
                predicted_ms=round(predicted, 3),
                measured_ms=round(measured, 3),
                relative_error=round((predicted - measured) / measured, 4),
                measure_seconds=round(seconds, 3)))
        print(
            f'predicted {predicted:.2f} ms, measured {measured:.2f} ms',
            flush=True)
    errors = [abs(r['relative_error']) for r in rows]
    per_measurement = statistics.median(r['measure_seconds'] for r in rows)
    write_result(
        dict(
            machine(device),
            benchmark='latency_table',
            config=args.config,
            input_size=list(shape[1:]),
            repeats=args.repeats,
            table_measurements=table.measurements,
            table_seconds=round(build_seconds, 2),
            seconds_per_measurement=round(per_measurement, 3),
            candidates_to_repay_the_table=round(
                build_seconds / per_measurement, 1),
            median_relative_error=round(statistics.median(errors), 4),
            max_relative_error=round(max(errors), 4),
            within_default_tolerance=sum(e <= 0.15 for e in errors),
            subnets=rows), result_path('latency_table', device, args.out))


if __name__ == '__main__':
    main()
