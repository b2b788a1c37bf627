from django.urls import path

from audit import api

urlpatterns = [path("api/v1/admin/audit-events", api.AuditEventList.as_view(), name="audit-events")]
