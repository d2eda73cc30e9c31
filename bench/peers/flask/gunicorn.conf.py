# gunicorn for the Flask peer (bench/peers/flask/app.py): one worker per core the server
# may run on (one when the bench pins the servers to core 0), an access line per request
# (the other servers log one at info). gthread, not the default sync worker: a sync
# worker closes the connection after every response, which autocannon counts as errors,
# and waits idle on every query; threads keep connections alive and overlap the waits.
import os

bind = f"127.0.0.1:{os.environ['PORT']}"
workers = len(os.sched_getaffinity(0))
worker_class = 'gthread'
threads = 4
accesslog = '-'
loglevel = 'info'
