"""Beam's DaskRunner, with side inputs computed once.

Beam 2.77's DaskRunner hands a `ParDo` its side inputs as an iterator that computes the side
input's dask bag *inside each task*: every partition re-runs everything upstream of the side input
(for the OPE pipelines: parsing the whole log again, per partition, per side input). Here a side
input becomes a dependency of the graph instead — one `Item` holding its elements, computed once
and sent to every partition's task — and everything else is Beam's own runner. Select it with
`--runner=tastemaker.training.evaluation.dask_runner.DaskRunner` (`beam_runners.pipeline_args`
does, for `evaluate --runner dask`).

The runner translates only `Create`, `ParDo`, `GroupByKey` and `Flatten` (no `Read`, no `Write`,
and a multi-output `ParDo` merges its outputs): the pipelines read through `beam_io` and tag
their streams themselves, so they run unchanged on every runner.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Iterable
from typing import Any

from apache_beam import pvalue
from apache_beam.pipeline import AppliedPTransform, PipelineVisitor
from apache_beam.runners.dask import dask_runner, transform_evaluator
from apache_beam.transforms.sideinputs import SideInputMap
from dask import delayed


@dataclasses.dataclass(frozen=True)
class _Side:
    """What a task needs to rebuild one side input's view from its elements."""

    view_class: Any
    view_options: Any
    window_mapping_fn: Any


def _concat(parts: Iterable[list[Any]]) -> list[Any]:
    out: list[Any] = []
    for part in parts:
        out.extend(part)
    return out


def _apply_with_sides(
    items: Iterable[Any], invoker_args: list[Any], invoker_kwargs: dict[str, Any], receivers: Any, sides: list[_Side],
    *values: list[Any],
) -> list[Any]:  # fmt: skip
    """One partition through the DoFn, its side inputs built from the elements computed upstream."""
    views = [
        SideInputMap(
            side.view_class,
            side.view_options,
            [transform_evaluator.get_windowed_value(v, side.window_mapping_fn) for v in elements],
        )
        for side, elements in zip(sides, values, strict=True)
    ]
    kwargs = {**invoker_kwargs, "side_inputs": views}
    return transform_evaluator.apply_dofn_to_bundle(items, invoker_args, kwargs, receivers)


class _ParDo(transform_evaluator.ParDo):
    """Beam's Dask `ParDo`, taking its side inputs as (spec, bag) pairs."""

    def apply(self, input_bag: Any, side_inputs: Any = None) -> Any:
        if not side_inputs:
            return super().apply(input_bag, None)
        transform = self.transform
        args, kwargs = transform.raw_side_inputs
        main_input = next(iter(self.applied.main_inputs.values()))
        window_fn = main_input.windowing.windowfn if hasattr(main_input, "windowing") else None
        receivers = transform_evaluator.OneReceiver()
        invoker_args = [
            transform_evaluator.DoFnSignature(transform.fn),
            transform_evaluator._OutputHandler(
                window_fn=window_fn,
                main_receivers=receivers[None],
                tagged_receivers=receivers,
                per_element_output_counter=None,
                output_batch_converter=None,
                process_yields_batches=False,
                process_batch_yields_elements=False,
            ),
        ]
        invoker_kwargs = dict(
            context=transform_evaluator.DoFnContext(transform.label, state=None),
            input_args=list(args),
            input_kwargs=kwargs,
            user_state_context=None,
            bundle_finalizer_param=transform_evaluator.DoFn.BundleFinalizerParam(),
        )
        sides = [spec for spec, _ in side_inputs]
        # each side input as one Delayed over the bag's partitions, their keys unchanged (a reduction
        # `Item` is optimised on its own first, which renames the fused upstream keys, so everything
        # upstream of the side input would be computed a second time)
        items = [delayed(_concat, pure=True)(bag.to_delayed(optimize_graph=False)) for _, bag in side_inputs]
        return input_bag.map(transform_evaluator.get_windowed_value, window_fn).map_partitions(
            _apply_with_sides, invoker_args, invoker_kwargs, receivers, sides, *items
        )


_TRANSLATIONS = {**transform_evaluator.TRANSLATIONS, transform_evaluator.apache_beam.ParDo: _ParDo}


class DaskRunner(dask_runner.DaskRunner):  # type: ignore[misc]
    """Beam's DaskRunner; side inputs are graph dependencies computed once (module docstring)."""

    @staticmethod
    def to_dask_bag_visitor(bag_kwargs: dict[str, Any] | None = None) -> PipelineVisitor:
        options: dict[str, Any] = bag_kwargs or {}
        translations: dict[Any, Any] = _TRANSLATIONS

        @dataclasses.dataclass
        class Visitor(PipelineVisitor):  # type: ignore[misc]
            bags: dict[AppliedPTransform, Any] = dataclasses.field(default_factory=collections.OrderedDict)

            def visit_transform(self, node: AppliedPTransform) -> None:
                op = translations.get(node.transform.__class__, transform_evaluator.NoOp)(node, bag_kwargs=options)
                inputs: list[Any] = []
                for value in node.inputs:
                    if isinstance(value, pvalue.PBegin):
                        inputs.append(None)
                    if value.producer in self.bags:
                        inputs.append(self.bags[value.producer])
                single = len(inputs) == 1 and not isinstance(op, transform_evaluator.Flatten)
                sides = [
                    (_Side(type(si), si._view_options(), si._window_mapping_fn), self.bags[si.pvalue.producer])
                    for si in node.side_inputs
                ]
                input_bag = inputs[0] if single else (inputs or None)
                self.bags[node] = op.apply(input_bag=input_bag, side_inputs=sides or None)  # _ParDo takes these

        return Visitor()

    def run_pipeline(self, pipeline: Any, options: Any) -> Any:
        started = super().run_pipeline(pipeline, options)
        return _Result(started.client, started.futures)


class _Result(dask_runner.DaskRunnerResult):  # type: ignore[misc]
    """Closes the runner's client once the pipeline is done (else it outlives its scheduler and
    keeps the process trying to reconnect for 30 s at exit)."""

    def wait_until_finish(self, duration: Any = None) -> Any:
        try:
            return super().wait_until_finish(duration)
        finally:
            self.client.close()
