"""The staff-only admin REST API under /api/v1/admin/: the same services as the back office."""

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from audit.reasons import reason_text
from config.permissions import permission
from subscriptions import services
from subscriptions.models import AddOnPurchase, Customer, Instance, Subscription


class UpdateAppliesOnly:
    """An update (PUT or PATCH) names only what its service changes (`updatable`). Any other field sent with a value
    other than the stored one, and any field the API does not know, is a 400 naming it: never dropped with a 200.
    A field sent with its current value (a PUT of what a GET returned) is fine."""

    updatable: tuple[str, ...] = ()

    def validate(self, attrs):
        attrs = super().validate(attrs)
        sent = self.initial_data if hasattr(self.initial_data, "keys") else {}
        if self.instance is None or not sent:
            return attrs
        current = None
        refused = {}
        applied = ", ".join(self.updatable)
        for name in sent:
            field = self.fields.get(name)
            if name in self.updatable:
                continue
            if field is None:
                refused[name] = [f"Unknown field; an update changes only {applied}."]
            elif field.read_only:
                current = self.to_representation(self.instance) if current is None else current
                if sent[name] != current.get(name):
                    refused[name] = [f"Read-only; an update changes only {applied}."]
            elif attrs.get(name) != getattr(self.instance, name):
                refused[name] = [f"Cannot be changed by an update (only {applied}); create a new one instead."]
        if refused:
            raise serializers.ValidationError(refused)
        return attrs


class CustomerSerializer(serializers.ModelSerializer):
    class Meta:
        model = Customer
        fields = ["id", "name", "contact_email", "created_at"]
        read_only_fields = ["id", "created_at"]

    def create(self, validated_data):
        return services.customer_create(**validated_data)


class AddOnPurchaseSerializer(UpdateAppliesOnly, serializers.ModelSerializer):
    active = serializers.SerializerMethodField()
    updatable = ("quantity", "expires_on")  # what add_on_purchase_update applies

    class Meta:
        model = AddOnPurchase
        fields = [
            "id",
            "purchase_id",
            "subscription",
            "add_on",
            "quantity",
            "started_on",
            "expires_on",
            "trial",
            "cancelled_at",
            "suspended",
            "active",
        ]
        read_only_fields = ["id", "purchase_id", "cancelled_at", "suspended", "active"]

    def get_active(self, purchase) -> bool:
        return purchase.is_active_on(timezone.now().date())

    def create(self, validated_data):
        return services.add_on_purchase_create(**validated_data)

    def update(self, purchase, validated_data):
        return services.add_on_purchase_update(
            purchase, quantity=validated_data.get("quantity"), expires_on=validated_data.get("expires_on")
        )


class SubscriptionSerializer(UpdateAppliesOnly, serializers.ModelSerializer):
    add_on_purchases = AddOnPurchaseSerializer(many=True, read_only=True)
    updatable = ("seats", "expires_on")  # what subscription_update applies (suspension: the suspend action)

    class Meta:
        model = Subscription
        fields = ["id", *Subscription.SUMMARY_FIELDS, "activation_code", "add_on_purchases", "created_at"]
        read_only_fields = ["id", "activation_code", "suspended", "add_on_purchases", "created_at"]
        extra_kwargs = {"expires_on": {"required": False, "help_text": "First day without access (default: a year)."}}

    def to_representation(self, subscription):
        data = super().to_representation(subscription)
        request = self.context.get("request")
        if request is None or not request.user.has_perm("subscriptions.view_activation_code"):
            data.pop("activation_code", None)
        return data

    def create(self, validated_data):
        return services.subscription_create(**validated_data)

    def update(self, subscription, validated_data):
        return services.subscription_update(
            subscription, seats=validated_data.get("seats"), expires_on=validated_data.get("expires_on")
        )


class InstanceSerializer(serializers.ModelSerializer):
    last_sync_at = serializers.DateTimeField(read_only=True, allow_null=True)  # on its own row (InstanceLastSync)

    class Meta:
        model = Instance
        fields = [
            "id",
            "instance_identifier",
            "subscription",
            "hostname",
            "gitlab_version",
            "unique_instance_id",
            "activated_at",
            "last_sync_at",
            "license_key_prefix",
            "suspended",
        ]
        read_only_fields = fields


class ActionReasonSerializer(serializers.Serializer):
    """A machine may say why (recorded in the audit trail); the back office's pages always ask a person."""

    reason = serializers.CharField(required=False, allow_blank=True, max_length=1000, default="")

    def validate_reason(self, value):
        return reason_text(value)


class ReleaseSerializer(ActionReasonSerializer):
    transfer_to = serializers.PrimaryKeyRelatedField(
        queryset=Customer.objects.all(),
        required=False,
        allow_null=True,
        help_text="The customer whose code may bind the released instance besides its own (a transfer).",
    )


class SuspendSerializer(ActionReasonSerializer):
    suspended = serializers.BooleanField()


class SuspendActionMixin:
    """`POST …/{id}/suspend/` with `{"suspended": bool}`, onto the viewset's `set_suspended` service."""

    set_suspended = None  # the `*_set_suspended` service, as a staticmethod

    def _suspend(self, request):
        body = SuspendSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        changed = self.set_suspended(
            self.get_object(), body.validated_data["suspended"], reason=body.validated_data["reason"]
        )
        return Response(self.get_serializer(changed).data)


class CustomerViewSet(
    mixins.CreateModelMixin, mixins.RetrieveModelMixin, mixins.ListModelMixin, viewsets.GenericViewSet
):
    queryset = Customer.objects.all()
    serializer_class = CustomerSerializer
    search_fields = ["name", "contact_email"]


class SubscriptionViewSet(
    SuspendActionMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.ListModelMixin,
    viewsets.GenericViewSet,
):
    queryset = Subscription.objects.select_related("customer").prefetch_related("add_on_purchases")
    serializer_class = SubscriptionSerializer
    set_suspended = staticmethod(services.subscription_set_suspended)

    @extend_schema(request=SuspendSerializer, responses=SubscriptionSerializer)
    @action(detail=True, methods=["post"], permission_classes=[permission("subscriptions.change_subscription")])
    def suspend(self, request, pk=None):
        return self._suspend(request)

    @extend_schema(request=ActionReasonSerializer, responses=SubscriptionSerializer)
    @action(
        detail=True,
        methods=["post"],
        url_path="regenerate_activation_code",
        permission_classes=[permission("subscriptions.regenerate_activation_code")],
    )
    def regenerate_activation_code(self, request, pk=None):
        body = ActionReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        subscription = services.subscription_regenerate_activation_code(
            self.get_object(), reason=body.validated_data["reason"]
        )
        return Response(self.get_serializer(subscription).data)  # with the request: the new code is in it


class AddOnPurchaseViewSet(
    SuspendActionMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.ListModelMixin,
    viewsets.GenericViewSet,
):
    queryset = AddOnPurchase.objects.select_related("subscription")
    serializer_class = AddOnPurchaseSerializer
    set_suspended = staticmethod(services.add_on_purchase_set_suspended)

    @extend_schema(request=SuspendSerializer, responses=AddOnPurchaseSerializer)
    @action(detail=True, methods=["post"], permission_classes=[permission("subscriptions.change_addonpurchase")])
    def suspend(self, request, pk=None):
        """`{"suspended": true}` suspends the purchase until `{"suspended": false}` resumes it."""
        return self._suspend(request)

    @extend_schema(request=ActionReasonSerializer, responses=AddOnPurchaseSerializer)
    @action(detail=True, methods=["post"], permission_classes=[permission("subscriptions.change_addonpurchase")])
    def cancel(self, request, pk=None):
        body = ActionReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        purchase = services.add_on_purchase_cancel(self.get_object(), reason=body.validated_data["reason"])
        return Response(AddOnPurchaseSerializer(purchase).data)


class InstanceViewSet(SuspendActionMixin, mixins.RetrieveModelMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    queryset = Instance.objects.select_related("subscription", "last_sync")
    serializer_class = InstanceSerializer
    set_suspended = staticmethod(services.instance_set_suspended)

    @extend_schema(request=SuspendSerializer, responses=InstanceSerializer)
    @action(detail=True, methods=["post"], permission_classes=[permission("subscriptions.suspend_instance")])
    def suspend(self, request, pk=None):
        return self._suspend(request)

    @extend_schema(request=ReleaseSerializer, responses=InstanceSerializer)
    @action(detail=True, methods=["post"], permission_classes=[permission("subscriptions.release_instance")])
    def release(self, request, pk=None):
        """Unbinds the instance; only its own customer, or `transfer_to`, may bind its UUID again."""
        release = ReleaseSerializer(data=request.data)
        release.is_valid(raise_exception=True)
        instance = services.instance_release(
            self.get_object(),
            transfer_to=release.validated_data.get("transfer_to"),
            reason=release.validated_data["reason"],
        )
        return Response(InstanceSerializer(instance).data, status=status.HTTP_200_OK)
