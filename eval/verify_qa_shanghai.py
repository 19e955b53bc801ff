"""Check qa_shanghai_blind.jsonl and qa_versions.jsonl against the corpus text (whitespace removed)."""
import json, re, os, sys, collections
D = '/work/shared/corpus_extra/shanghai_regulations/'
R = '/work/shared/corpus_extra/regions/'
def txt(p): return re.sub(r'\s+', '', open(p, encoding='utf-8').read())
SH = {f: txt(D + f) for f in os.listdir(D)}
REG = {}
for root, _, fs in os.walk(R):
    for f in fs:
        if f.endswith('.md'): REG[os.path.join(root, f)] = txt(os.path.join(root, f))
TITLE = {f: open(D + f, encoding='utf-8').readline().strip('# \n') for f in SH}
NTITLE = collections.Counter(TITLE.values())
err = 0
def bad(i, m):
    global err; err += 1; print('ERR', i, m)
def alts(k): return k if isinstance(k, list) else [k]
def check(path, versions=False):
    ids = set(); rows = [json.loads(l) for l in open(path, encoding='utf-8')]
    for r in rows:
        i = r['id']
        if i in ids: bad(i, 'dup id')
        ids.add(i)
        if r['kind'] == 'unanswerable':
            if r['keys'] or r['gold'] or r['doc']: bad(i, 'unanswerable with keys/gold/doc')
            if r.get('reason') not in ('not_stated', 'other_region_topic', 'place_not_indexed'): bad(i, 'reason')
            continue
        t = SH[r['doc']]
        if not versions and NTITLE[TITLE[r['doc']]] > 1: bad(i, 'two-version law in blind set')
        if versions and NTITLE[TITLE[r['doc']]] < 2: bad(i, 'not a two-version law')
        g = r['gold']
        if not (8 <= len(g) <= 30): bad(i, f'gold len {len(g)}')
        if g not in t: bad(i, 'gold not in doc: ' + g)
        for k in r['keys']:
            if not any(a in t for a in alts(k)): bad(i, f'key not in doc: {k}')
        if versions:
            other = SH[r['old_doc'] if r['asks'] == 'current' else r['current_doc']]
            if r['doc'] != (r['current_doc'] if r['asks'] == 'current' else r['old_doc']): bad(i, 'doc/asks mismatch')
            dist = all(not any(a in other for a in alts(k)) for k in r['keys'])
            if dist != r['distinct']: bad(i, f'distinct should be {dist}')
    return rows
rows = check('/work/main/eval/qa_shanghai_blind.jsonl')
vrows = check('/work/main/eval/qa_versions.jsonl', versions=True)
c = collections.Counter(r['kind'] for r in rows)
print('blind', len(rows), dict(c))
print('  distinct docs', len({r['doc'] for r in rows if r['doc']}))
print('  place', collections.Counter(str(r['place']) for r in rows))
print('  reasons', collections.Counter(r.get('reason') for r in rows if r.get('reason')))
print('versions', len(vrows), collections.Counter(r['asks'] for r in vrows), 'distinct', sum(r['distinct'] for r in vrows))
print('errors', err)
sys.exit(1 if err else 0)
