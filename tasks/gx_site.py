"""Data Docs site parts that `validate.build_data_docs` configures into GX by module and class name (so GX, slow to
import, is imported here only when a site is built): page views whose compiled Jinja templates are cached on disk,
and an index builder that takes each validation's index entry from a summary file instead of loading every stored
validation result again on each run."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResult
from great_expectations.render.renderer.site_builder import (
    DefaultSiteIndexBuilder,
    _resolve_asset_name,
    resource_key_passes_run_name_filter,
)
from great_expectations.render.view import DefaultJinjaIndexPageView, DefaultJinjaPageView
from great_expectations.util import convert_to_json_serializable
from jinja2 import FileSystemBytecodeCache

log = logging.getLogger(__name__)


class TemplateCache:
    """Mixin for a GX Jinja view: its compiled templates are kept in the folder `template_cache` across runs."""

    def __init__(self, template_cache: str, custom_styles_directory=None, custom_views_directory=None) -> None:
        super().__init__(custom_styles_directory=custom_styles_directory, custom_views_directory=custom_views_directory)
        Path(template_cache).mkdir(parents=True, exist_ok=True)
        self.env.bytecode_cache = FileSystemBytecodeCache(template_cache)


class PageView(TemplateCache, DefaultJinjaPageView):
    """GX's suite and validation page view, with cached templates."""


class IndexPageView(TemplateCache, DefaultJinjaIndexPageView):
    """GX's index page view, with cached templates."""


class SummaryIndexBuilder(DefaultSiteIndexBuilder):
    """GX's index builder, except that each validation's entry (success, asset, batch) comes from `summary_file`:
    only results not summarised yet (this run's) are loaded from the store. The file is rewritten with the entries
    of the validations the index lists."""

    # GX passes a builder the parts of its environment that its __init__ names, so they are all named here.
    def __init__(  # noqa: PLR0913
        self,
        summary_file: str,
        name,
        site_name,
        data_context,
        target_store,
        site_section_builders_config,
        source_stores,
        view,
        data_context_id=None,
        show_how_to_buttons=True,
        custom_styles_directory=None,
        custom_views_directory=None,
    ) -> None:
        super().__init__(
            name=name,
            site_name=site_name,
            data_context=data_context,
            target_store=target_store,
            site_section_builders_config=site_section_builders_config,
            source_stores=source_stores,
            view=view,
            data_context_id=data_context_id,
            show_how_to_buttons=show_how_to_buttons,
            custom_styles_directory=custom_styles_directory,
            custom_views_directory=custom_views_directory,
        )
        self.summary_file = Path(summary_file)

    def _add_validations_to_index_links(self, index_links_dict, validation_and_profiling_result_site_keys) -> None:
        site_keys = validation_and_profiling_result_site_keys
        run_name_filter = self.site_section_builders_config["validations"]["run_name_filter"]
        keys = sorted(
            (k for k in site_keys if resource_key_passes_run_name_filter(k, run_name_filter)),
            key=lambda k: k.run_id.run_time,
            reverse=True,
        )
        summary = self.read_summary()
        listed = {}
        for key in keys:
            name = "/".join(key.to_tuple())
            entry = summary.get(name) or self.summarise(key)
            if entry is None:
                log.warning("Validation result not found: %s - skipping", name)
                continue
            listed[name] = entry
            self.add_resource_info_to_index_links_dict(
                index_links_dict=index_links_dict,
                expectation_suite_name=key.expectation_suite_identifier.name,
                section_name="validations",
                batch_identifier=key.batch_identifier,
                run_id=key.run_id,
                validation_success=entry["success"],
                run_time=key.run_id.run_time,
                run_name=key.run_id.run_name,
                asset_name=entry["asset_name"],
                batch_kwargs=entry["batch_kwargs"],
                batch_spec=entry["batch_spec"],
            )
        staged = self.summary_file.with_suffix(".tmp")
        staged.write_text(json.dumps(listed, indent=0, sort_keys=True), encoding="utf-8")
        os.replace(staged, self.summary_file)

    def read_summary(self) -> dict:
        """The summarised entries ({} if the file is missing or unreadable: every result is then loaded)."""
        try:
            return json.loads(self.summary_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def summarise(self, key) -> dict | None:
        """A stored validation result's index entry (None if it cannot be loaded, which GX's builder also skips)."""
        try:
            result = self.data_context.get_validation_result(
                batch_identifier=key.batch_identifier,
                expectation_suite_name=key.expectation_suite_identifier.name,
                run_id=key.run_id,
                validation_results_store_name=self.source_stores.get("validations"),
            )
        except Exception:  # as GX's builder: an unreadable result is left out of the index, not fatal
            log.exception("Validation result %s could not be loaded", key.to_tuple())
            return None
        if not isinstance(result, ExpectationSuiteValidationResult):
            return None
        return convert_to_json_serializable(
            {
                "success": result.success,
                "asset_name": _resolve_asset_name(result),
                "batch_kwargs": result.meta.get("batch_kwargs", {}),
                "batch_spec": result.meta.get("batch_spec", {}),
            }
        )
