from datetime import timedelta

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from tickets.models import Channel, Customer, Message, Ticket, Tier


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password = factory.django.Password("correct horse battery staple")

    @factory.post_generation
    def groups(self, create, names, **kwargs):
        if create and names:
            self.groups.add(*Group.objects.filter(name__in=names))


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    external_id = factory.Sequence(lambda n: f"cust-{n}")
    name = factory.Faker("name")
    email = factory.Faker("email")
    company = factory.Faker("company")
    tier = Tier.STANDARD


class TicketFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Ticket

    source = "test"
    external_id = factory.Sequence(lambda n: f"T-{n}")
    customer = factory.SubFactory(CustomerFactory)
    subject = factory.Faker("sentence", nb_words=6)
    body = factory.Faker("paragraph")
    channel = Channel.EMAIL
    created_at = factory.LazyFunction(timezone.now)
    first_response_due = factory.LazyAttribute(lambda t: t.created_at + timedelta(hours=8))
    resolution_due = factory.LazyAttribute(lambda t: t.created_at + timedelta(days=2))
    correlation_id = factory.Faker("hexify", text="^" * 32)


class MessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Message

    ticket = factory.SubFactory(TicketFactory)
    kind = Message.Kind.EXTERNAL
    sender_kind = Message.SenderKind.CUSTOMER
    content = factory.Faker("paragraph")
    created_at = factory.LazyFunction(timezone.now)
    # A message to the customer made here has gone out already.
    delivery = factory.LazyAttribute(
        lambda m: "sent" if m.kind == "external" and m.sender_kind != Message.SenderKind.CUSTOMER else ""
    )
    delivered_at = factory.LazyAttribute(lambda m: m.created_at if m.delivery else None)
