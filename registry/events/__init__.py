"""Operations: the event outbox and its delivery, structured logs, metrics and health."""
