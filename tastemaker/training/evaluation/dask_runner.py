"""Beam's DaskRunner, with side inputs computed once.

Beam 2.77's DaskRunner hands a `ParDo` its side inputs as an iterator that computes the side
input's dask bag *inside each task*: every partition re-runs everything upstream of the side input
(for the OPE pipelines: parsing the whole log again, per partition, per side input). Here a side
input becomes a dependency of the graph instead — one `Item` holding its elements, computed once
and sent to every partition's task — and everything else is Beam's own runner. Select it with
`--runner=tastemaker.training.evaluation.dask_runner.DaskRunner` (`beam_runners.pipeline_args`
does, for `evaluate --runner dask`).

Two more amendments: a bundle's `finish_bundle` outputs are kept (Beam's drops them), so that
`CombinePerKey` can run lifted — each partition combines its own elements per key before the
shuffle, as Beam's other runners do — instead of sending every value of a key to one task.

The runner translates only `Create`, `ParDo`, `GroupByKey` and `Flatten` (no `Read`, no `Write`,
and a multi-output `ParDo` merges its outputs): the pipelines read through `beam_io` and tag
their streams themselves, so they run unchanged on every runner.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
from collections.abc import Iterable
from typing import Any

from apache_beam import pvalue
from apache_beam.pipeline import AppliedPTransform, PipelineVisitor, PTransformOverride
from apache_beam.runners.dask import dask_runner, transform_evaluator
from apache_beam.transforms import core
from apache_beam.transforms.combiners import LiftedCombinePerKey
from apache_beam.transforms.sideinputs import SideInputMap
from dask import delayed

from tastemaker.training.progress import watched


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


@dataclasses.dataclass(frozen=True)
class _Call:
    """What a task needs to run one ParDo over a partition."""

    fn: Any
    window_fn: Any
    label: str
    args: list[Any]
    kwargs: dict[str, Any]
    sides: list[_Side]


def _bundle(items: Iterable[Any], call: _Call, *side_values: list[Any]) -> list[Any]:
    """One partition through the DoFn as one bundle, with receivers of its own; unlike Beam's
    `apply_dofn_to_bundle`, what `finish_bundle` outputs is kept (a lifted combiner emits its
    partial sums there), and the side inputs' views are built from their computed elements."""
    views = [
        SideInputMap(
            side.view_class,
            side.view_options,
            [transform_evaluator.get_windowed_value(v, side.window_mapping_fn) for v in elements],
        )
        for side, elements in zip(call.sides, side_values, strict=True)
    ]
    receivers = transform_evaluator.OneReceiver()
    handler = transform_evaluator._OutputHandler(
        window_fn=call.window_fn,
        main_receivers=receivers[None],
        tagged_receivers=receivers,
        per_element_output_counter=None,
        output_batch_converter=None,
        process_yields_batches=False,
        process_batch_yields_elements=False,
    )
    invoker = transform_evaluator.DoFnInvoker.create_invoker(
        transform_evaluator.DoFnSignature(call.fn),
        handler,
        context=transform_evaluator.DoFnContext(call.label, state=None),
        side_inputs=views or None,
        input_args=call.args,
        input_kwargs=call.kwargs,
        user_state_context=None,
        bundle_finalizer_param=transform_evaluator.DoFn.BundleFinalizerParam(),
    )
    invoker.invoke_setup()
    invoker.invoke_start_bundle()
    for item in items:
        invoker.invoke_process(item)
    invoker.invoke_finish_bundle()
    invoker.invoke_teardown()
    return [v.value for v in receivers.values]


class _ParDo(transform_evaluator.ParDo):
    """Beam's Dask `ParDo`, its side inputs given as (spec, bag) pairs (`_bundle`)."""

    def apply(self, input_bag: Any, side_inputs: Any = None) -> Any:
        transform = self.transform
        args, kwargs = transform.raw_side_inputs
        main_input = next(iter(self.applied.main_inputs.values()))
        window_fn = main_input.windowing.windowfn if hasattr(main_input, "windowing") else None
        side_inputs = side_inputs or []
        call = _Call(transform.fn, window_fn, transform.label, list(args), kwargs, [spec for spec, _ in side_inputs])
        # each side input as one Delayed over the bag's partitions, their keys unchanged (a reduction
        # `Item` is optimised on its own first, which renames the fused upstream keys, so everything
        # upstream of the side input would be computed a second time)
        values = [delayed(_concat, pure=True)(bag.to_delayed(optimize_graph=False)) for _, bag in side_inputs]
        windowed = input_bag.map(transform_evaluator.get_windowed_value, window_fn)
        return windowed.map_partitions(_bundle, call, *values)


class _LiftCombines(PTransformOverride):  # type: ignore[misc]
    """`CombinePerKey` as Beam's `LiftedCombinePerKey`: each bundle combines its own elements per key
    before the shuffle, which then carries (keys × partitions) accumulators instead of every
    element (the DaskRunner would otherwise group every value of a key into one task)."""

    def matches(self, applied: AppliedPTransform) -> bool:
        return type(applied.transform) is core.CombinePerKey

    def get_replacement_transform_for_applied_ptransform(self, applied: AppliedPTransform) -> Any:
        transform: Any = applied.transform
        return LiftedCombinePerKey(transform.fn, transform.args, transform.kwargs)


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
        pipeline.replace_all([_LiftCombines()])
        started = super().run_pipeline(pipeline, options)
        return _Result(started.client, started.futures)


class _Result(dask_runner.DaskRunnerResult):  # type: ignore[misc]
    """Closes the runner's client once the pipeline is done (else it outlives its scheduler and
    keeps the process trying to reconnect for 30 s at exit)."""

    def wait_until_finish(self, duration: Any = None) -> Any:
        try:
            stream = watched()
            if stream is not None and duration is None:  # Dask's own bar of the cluster's tasks, on stderr
                from distributed import progress

                with contextlib.redirect_stdout(stream):
                    progress(self.futures)
                stream.write("\n")
            return super().wait_until_finish(duration)
        finally:
            self.client.close()
