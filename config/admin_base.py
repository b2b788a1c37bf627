"""Admin building blocks shared by the apps."""

import re

from django.contrib import admin
from django.db.models.constants import LOOKUP_SEP

from audit.services import SECRET_FIELDS
from config.pagination import EstimatedCountPaginator

# Never a lookup in a URL: the audit trail's secret fields, and the hashes Django's and knox's own models keep.
REFUSED_LOOKUP_FIELDS = SECRET_FIELDS | {"password", "digest", "session_key", "session_data"}
# What Django's own list filters put after a field path in a URL (exact/isnull for choices, booleans and
# relations, gte/lt for dates, isempty for the empty filter); the date hierarchy adds year/month/day.
FILTER_SUFFIXES = ("exact", "isnull", "gte", "lt", "isempty", "id__exact", "pk__exact")
DATE_HIERARCHY_SUFFIXES = ("year", "month", "day")


class StrictLookupsAdmin(admin.ModelAdmin):
    """A changelist answers only the lookups its page offers: its declared filters, its date hierarchy, the raw-id
    popups' `limit_choices_to`, and `link_lookups` (filters the back office's own links use). Django would accept
    any lookup on a local field, so `?activation_code__startswith=8` told a viewer, one character at a time,
    what it may not see. A refused lookup is Django's DisallowedModelAdminLookup: a 400, never a query.

    An admin names its `link_lookups` as a class attribute (read with getattr: this class comes first in the
    order of the admins it wraps, so a default here would hide theirs)."""

    def lookup_allowed(self, lookup, value, request=None):
        if REFUSED_LOOKUP_FIELDS.intersection(lookup.split(LOOKUP_SEP)):
            return False
        return (
            lookup in getattr(self, "link_lookups", ())
            or lookup in self.offered_lookups(request)
            or self._raw_id_lookup(lookup, value)
        )

    def offered_lookups(self, request) -> set[str]:
        offered = set()
        if self.date_hierarchy:
            offered |= {f"{self.date_hierarchy}{LOOKUP_SEP}{suffix}" for suffix in DATE_HIERARCHY_SUFFIXES}
        for item in self.get_list_filter(request) if request is not None else self.list_filter:
            if isinstance(item, type) and issubclass(item, admin.SimpleListFilter):
                offered.add(item.parameter_name)
                continue
            field_path = item[0] if isinstance(item, (list, tuple)) else item
            if not isinstance(field_path, str):  # a FieldListFilter class alone names no field
                continue
            offered |= {field_path, *(f"{field_path}{LOOKUP_SEP}{suffix}" for suffix in FILTER_SUFFIXES)}
        return offered

    def _raw_id_lookup(self, lookup, value) -> bool:
        """The popup of a raw-id widget filters by its ForeignKey's limit_choices_to, as Django allows."""
        from django.contrib.admin.widgets import url_params_from_lookup_dict

        for fk_lookup in self.model._meta.related_fkey_lookups:
            if callable(fk_lookup):
                fk_lookup = fk_lookup()
            if (lookup, value) in url_params_from_lookup_dict(fk_lookup).items():
                return True
        return False


def strict_lookups(admin_class: type[admin.ModelAdmin]) -> type[admin.ModelAdmin]:
    """`admin_class` with StrictLookupsAdmin's rule, for the admins the site registers (Django's and knox's too)."""
    if issubclass(admin_class, StrictLookupsAdmin):
        return admin_class
    return type(admin_class.__name__, (StrictLookupsAdmin, admin_class), {"__module__": admin_class.__module__})


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


def short_id(field: str, description: str | None = None):
    """A list column for a long id (UUID, jti, key id): its start shown, the whole value in the page for hover
    (title) and copy (`.short-id` in backoffice.css clips it)."""
    from django.utils.html import format_html

    @admin.display(description=description or field.replace("_", " "), ordering=field)
    def shown(obj):
        value = getattr(obj, field)
        return format_html('<span class="short-id" title="{}">{}</span>', value, value) if value else "—"

    shown.__name__ = f"{field}_short"
    return shown


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
