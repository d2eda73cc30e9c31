# Peer "flask": the seed's own stack, Flask under gunicorn with PyJWT (Debian has no
# python3-flask-jwt-extended package), psycopg2 and argon2-cffi. The routes do the same
# work as bench/baseline.mjs: the same JWT verification (HS256, the same secret), the
# same SQL, the same bodies. One connection per worker thread (gunicorn.conf.py).
import base64
import os
import threading
import time
import uuid
from datetime import timezone

import jwt
import psycopg2
from argon2 import PasswordHasher
from argon2.exceptions import VerifyMismatchError
from flask import Flask, g, jsonify, request

SECRET = os.environ['JWT_SECRET_KEY']
DATABASE_URL = os.environ['DATABASE_URL']
UTC = lambda c: f"""to_char({c} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS {c}"""
COLUMNS = f"id, title, body, version, {UTC('created_at')}, {UTC('updated_at')}"
NOTE_KEYS = ['id', 'title', 'body', 'version', 'created_at', 'updated_at']

app = Flask(__name__)
hasher = PasswordHasher()
_local = threading.local()


def db():
    conn = getattr(_local, 'conn', None)
    if conn is None or conn.closed:
        conn = _local.conn = psycopg2.connect(DATABASE_URL)
        conn.autocommit = True
    return conn


def query(sql, params):
    with db().cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def authenticate():
    scheme, _, token = request.headers.get('Authorization', '').partition(' ')
    if scheme != 'Bearer' or not token:
        return False
    try:
        g.user = jwt.decode(token, SECRET, algorithms=['HS256'])
    except jwt.PyJWTError:
        return False
    return True


def unauthorized():
    return jsonify(error='unauthorized'), 401


def iso(dt):
    return dt.astimezone(timezone.utc).isoformat(timespec='milliseconds').replace('+00:00', 'Z')


@app.get('/health/live')
def live():
    return jsonify(status='ok')


@app.get('/auth/me')
def me():
    if not authenticate():
        return unauthorized()
    row = query('SELECT id, email, created_at FROM users WHERE id = %s', (g.user['sub'],))[0]
    return jsonify(id=str(row[0]), email=row[1], scopes=['notes:read', 'notes:write'], created_at=iso(row[2]))


@app.get('/notes')
def list_notes():
    if not authenticate():
        return unauthorized()
    limit = int(request.args.get('limit', 20))
    rows = query(f'SELECT {COLUMNS} FROM notes WHERE owner_id = %s ORDER BY notes.created_at DESC, id DESC LIMIT %s',
                 (g.user['sub'], limit + 1))
    items = [dict(zip(NOTE_KEYS, (str(r[0]),) + tuple(r[1:]))) for r in rows[:limit]]
    nxt = None
    if len(rows) > limit and items:
        last = items[-1]
        nxt = base64.urlsafe_b64encode(f"{last['created_at']}|{last['id']}".encode()).decode().rstrip('=')
    return jsonify(items=items, next_cursor=nxt)


@app.post('/notes')
def create_note():
    if not authenticate():
        return unauthorized()
    body = request.get_json()
    r = query(f'INSERT INTO notes (owner_id, title, body) VALUES (%s, %s, %s) RETURNING {COLUMNS}',
              (g.user['sub'], body['title'], body.get('body', '')))[0]
    note = dict(zip(NOTE_KEYS, (str(r[0]),) + tuple(r[1:])))
    return jsonify(note), 201, {'Location': f"/notes/{note['id']}"}


@app.post('/auth/login')
def login():
    body = request.get_json()
    rows = query('SELECT id, email, password_hash FROM users WHERE email = lower(%s)', (body['email'].strip(),))
    if not rows:
        return jsonify(error='invalid'), 401
    try:
        hasher.verify(rows[0][2], body['password'])
    except VerifyMismatchError:
        return jsonify(error='invalid'), 401
    user_id = str(rows[0][0])
    refresh_jti = str(uuid.uuid4())
    sid = str(query("""INSERT INTO sessions (user_id, refresh_jti, expires_at)
                       VALUES (%s, %s, now() + make_interval(secs => %s)) RETURNING id, expires_at""",
                    (user_id, refresh_jti, 2592000))[0][0])
    now = int(time.time())
    access = jwt.encode({'sub': user_id, 'sid': sid, 'type': 'access', 'scope': 'notes:read notes:write',
                         'jti': str(uuid.uuid4()), 'iat': now, 'exp': now + 3600}, SECRET, algorithm='HS256')
    refresh = jwt.encode({'sub': user_id, 'sid': sid, 'type': 'refresh', 'jti': refresh_jti,
                          'iat': now, 'exp': now + 2592000}, SECRET, algorithm='HS256')
    return jsonify(access_token=access, refresh_token=refresh, token_type='Bearer', expires_in=3600)
