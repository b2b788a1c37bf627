"""`field__any_of=[...]`: `__in` for a batch's ids, as one array parameter on PostgreSQL.

Django writes `IN (%s, %s, …)` with a placeholder per value; for the 500 ids of a refresh chunk, building and
binding those cost twice what the database spent running the query. On PostgreSQL this lookup sends
`= ANY(%s)` with the list as one array (same plan: an index scan on the values); elsewhere it is `__in`. The values
are column values (ids), not model instances."""

from django.core.exceptions import EmptyResultSet
from django.db.models import Field, ForeignObject
from django.db.models.lookups import In


@ForeignObject.register_lookup  # Django's foreign keys take only their own lookups (`subscription_id__any_of`)
@Field.register_lookup
class AnyOf(In):
    lookup_name = "any_of"

    def as_postgresql(self, compiler, connection):
        if not self.rhs_is_direct_value():
            return super().as_sql(compiler, connection)
        # As `__in`: None matches nothing (and inside the array it would make NOT (… = ANY(…)) null for every row).
        values = [self.lhs.output_field.get_db_prep_value(value, connection) for value in self.rhs if value is not None]
        if not values:
            raise EmptyResultSet
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs} = ANY(%s)", (*lhs_params, values)
