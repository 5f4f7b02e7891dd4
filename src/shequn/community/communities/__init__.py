"""Communities (人 命 器 仪 场 领), their members and venues."""
