"""Admin building blocks shared by the apps."""

import re

from django.contrib import admin

from config.pagination import EstimatedCountPaginator

UUID_SHAPE = r"[0-9a-fA-F]{8}-?(?:[0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}"


class ReadOnlyAdmin(admin.ModelAdmin):
    """A list and detail to read, for records no one edits (keys change through services, events never)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class FleetScaleAdmin(admin.ModelAdmin):
    """A changelist that costs the page, not the fleet.

    - The count is estimated above a threshold (`config.pagination`), and the unfiltered total is never counted.
    - A search is dispatched by its shape to one indexed lookup: `search_shapes` pairs a pattern with a function
      (queryset, term) -> queryset, the first full match wins; any other term goes to `search_text`. Django's own
      search would OR every `search_fields` entry, across joins, which no index serves.
    """

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    search_shapes: tuple = ()

    def get_search_shapes(self, request) -> tuple:
        return self.search_shapes

    def search_text(self, request, queryset, term):
        return queryset.none()

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        for pattern, lookup in self.get_search_shapes(request):
            if re.fullmatch(pattern, term):
                return lookup(queryset, term), False
        return self.search_text(request, queryset, term), False


def fixed_choices_filter(field_path: str, title: str, choices) -> type[admin.SimpleListFilter]:
    """A list filter with the choices given, where Django would read every distinct value off a large table."""

    class FixedChoices(admin.SimpleListFilter):
        parameter_name = field_path

        def lookups(self, request, model_admin):
            return [(value, value) for value in (choices() if callable(choices) else choices)]

        def queryset(self, request, queryset):
            return queryset.filter(**{field_path: self.value()}) if self.value() else queryset

    FixedChoices.title = title
    FixedChoices.__name__ = f"FixedChoices_{field_path}"
    return FixedChoices
