import { useEffect, useState } from 'preact/hooks';
import { allowed } from '../api.ts';
import type { Shared } from '../main.tsx';
import { ErrorNote, Id, When, errorText } from '../ui.tsx';

interface OperatorKey {
  id: string;
  name: string;
  role: 'viewer' | 'approver' | 'admin';
  created_at: string;
  revoked_at: string | null;
}

const ROLES = ['viewer', 'approver', 'admin'] as const;

/**
 * Operator API keys (admin role): list, create (the secret is shown once, as the server returns
 * it only once) and revoke. The server audits each creation and revocation and refuses to revoke
 * the key making the request.
 */
export function OperatorsView({ shared }: { shared: Shared }) {
  const [keys, setKeys] = useState<OperatorKey[]>();
  const [name, setName] = useState('');
  const [role, setRole] = useState<(typeof ROLES)[number]>('viewer');
  const [created, setCreated] = useState<{ id: string; name: string; role: string; key: string }>();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  const [version, setVersion] = useState(0);
  const manage = allowed(shared.me, 'manage_keys');

  useEffect(() => {
    // a key whose role cannot manage keys cannot list them either: nothing to ask
    if (!manage) return;
    let live = true;
    shared.api.get<{ keys: OperatorKey[] }>('/v1/operators/keys').then(
      (r) => {
        if (!live) return;
        setKeys(r.keys);
        setError(undefined);
      },
      (e: unknown) => live && setError(errorText(e)),
    );
    return () => {
      live = false;
    };
  }, [shared.api, version, manage]);

  const create = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    setCreated(undefined);
    try {
      setCreated(await shared.api.post('/v1/operators/keys', { name: name.trim(), role }));
      setName('');
      setVersion((v) => v + 1);
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };

  const revoke = (k: OperatorKey) =>
    shared.confirm({
      title: 'Revoke this operator key?',
      body: (
        <p>
          <strong>{k.name}</strong> ({k.role}, <code>{k.id}</code>) stops working at its next request. This cannot be undone.
        </p>
      ),
      confirmLabel: 'Revoke',
      onConfirm: async () => {
        await shared.api.delete(`/v1/operators/keys/${encodeURIComponent(k.id)}`);
        setVersion((v) => v + 1);
      },
    });

  if (!manage) {
    return <p class="muted">{shared.me ? `Operator keys are managed with the admin role; this key (${shared.me.name}) is ${shared.me.role}.` : 'Reading this key\u2019s role\u2026'}</p>;
  }
  return (
    <>
      <ErrorNote error={error} />
      <section aria-labelledby="create-h">
        <h2 id="create-h">Create a key</h2>
        <form class="toolbar" onSubmit={create}>
          <label class="field inline">
            Name
            <input name="name" value={name} maxLength={100} required onInput={(e) => setName((e.target as HTMLInputElement).value)} />
          </label>
          <label class="field inline">
            Role
            <select value={role} onChange={(e) => setRole((e.target as HTMLSelectElement).value as (typeof ROLES)[number])}>
              {ROLES.map((r) => (
                <option key={r} value={r}>
                  {r}
                </option>
              ))}
            </select>
          </label>
          <button type="submit" class="primary" disabled={busy || name.trim() === ''}>
            Create key
          </button>
        </form>
        {created && (
          <div class="card created-key" role="status">
            <p class="ok">
              Created {created.role} key “{created.name}”. Copy it now: it is not shown again.
            </p>
            <Id id={created.key} n={24} />
          </div>
        )}
      </section>
      <section aria-labelledby="keys-h">
        <h2 id="keys-h">Keys</h2>
        <table class="operator-keys">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Role</th>
              <th scope="col">Id</th>
              <th scope="col">Created</th>
              <th scope="col">Status</th>
              <th scope="col">
                <span class="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {keys?.length === 0 && (
              <tr>
                <td colSpan={6} class="muted">
                  No keys.
                </td>
              </tr>
            )}
            {keys?.map((k) => (
              <tr key={k.id} data-key-id={k.id} class={k.revoked_at === null ? '' : 'ended'}>
                <th scope="row">{k.name}</th>
                <td>{k.role}</td>
                <td>
                  <Id id={k.id} />
                </td>
                <td>
                  <When iso={k.created_at} />
                </td>
                <td>
                  {k.revoked_at === null ? (
                    <span class="badge state-active">active</span>
                  ) : (
                    <>
                      <span class="badge state-revoked">revoked</span> <When iso={k.revoked_at} />
                    </>
                  )}
                </td>
                <td>
                  {k.revoked_at === null && (
                    <button type="button" class="danger" aria-label={`Revoke key ${k.name}`} onClick={() => revoke(k)}>
                      Revoke
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
    </>
  );
}
