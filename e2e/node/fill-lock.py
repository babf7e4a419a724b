#!/usr/bin/env python3
# Run after `npm install` in e2e/node: python3 fill-lock.py package-lock.json
# Adds lock entries for optional platform packages that the registry here does not serve, so that
# `npm ci` accepts the lock; each entry carries os/cpu so npm skips it on this platform.
import json, re, sys
path = sys.argv[1]
l = json.load(open(path))
P = l['packages']
added = []
for key, entry in list(P.items()):
    for dep, spec in (entry.get('optionalDependencies') or {}).items():
        target = f'node_modules/{dep}'
        if target in P or (key and f'{key}/node_modules/{dep}' in P):
            continue
        name = dep.split('/')[-1]
        os_ = next((o for o in ('darwin', 'linux', 'win32', 'windows', 'freebsd', 'android') if o in name), None)
        cpu = next((c for c in ('arm64', 'x64', 'ia32', 'arm') if re.search(rf'(^|-){c}(-|$)', name)), None)
        assert os_ and cpu, (key, dep)
        new = {'version': spec, 'cpu': [cpu], 'dev': True, 'optional': True, 'os': ['win32' if os_ == 'windows' else os_]}
        if os_ == 'linux':
            new['libc'] = ['musl' if 'musl' in name else 'glibc']
        P[target] = new
        added.append(f'{dep}@{spec}')
l['packages'] = dict(sorted(P.items(), key=lambda kv: (kv[0] != '', kv[0])))
with open(path, 'w') as f:
    json.dump(l, f, indent=2)
    f.write('\n')
print('\n'.join(added))
