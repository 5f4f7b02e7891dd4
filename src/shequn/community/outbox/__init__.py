"""The outbox: every message the system wants sent, with its adapter and delivery state.

For other capabilities (repurchase reminders, one-time login codes, SOP steps…), in the
caller's own transaction:

    from shequn.community.outbox import Message, enqueue_messages

    enqueue_messages(tx, tenant_id=ctx.tenant_id, at=now, messages=[
        Message(dedupe_key=f"repurchase:{member_id}:{day}", kind="repurchase_reminder",
                body="…", staff_account_id=account_id, member_id=member_id),
    ])

`dedupe_key` names the message (at most 120 characters): a second message with the same key
for the tenant is the same message and is kept once, so a job that runs twice queues nothing
twice. A message without an adapter goes where its staff account sends: the account's bound
signed-webhook channel, else its operator's task list (`operator_task`, marked done or skipped
by a person: `GET /outbox`, `POST /outbox/{id}/done|skip`). Pass `adapter` and `channel_id`
to choose. `due_at` is a deadline shown with the task (a welcome within 20 seconds of an add).
Automated adapters are sent by `dispatcher.dispatch_all` (`shequn community outbox-deliver`);
`adapters.ChannelAdapter` and `adapters.WeComGateway` are the interfaces a WeChat Work adapter
implements.
"""

from shequn.community.outbox.rules import Adapter, Message, MessageStatus
from shequn.community.outbox.service import enqueue_messages

__all__ = ["Adapter", "Message", "MessageStatus", "enqueue_messages"]
