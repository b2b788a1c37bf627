from django.urls import include, path
from rest_framework.routers import DefaultRouter

from subscriptions import admin_api, seat_links

router = DefaultRouter()
router.register("customers", admin_api.CustomerViewSet)
router.register("subscriptions", admin_api.SubscriptionViewSet)
router.register("add_on_purchases", admin_api.AddOnPurchaseViewSet)
router.register("instances", admin_api.InstanceViewSet)

urlpatterns = [
    path("api/v1/seat_links", seat_links.seat_link, name="seat-links"),
    path("api/v1/admin/", include(router.urls)),
]
