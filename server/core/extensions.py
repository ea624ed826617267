"""Extensions are module-level objects, bound to an app by `init_app` in server.app."""

from __future__ import annotations

from flask_sqlalchemy import SQLAlchemy

from loyalty.db import Base

db = SQLAlchemy(model_class=Base)
