// The app's one client. Only the refresh token (and this browser's device id, which
// names no account) is kept in localStorage; everything else lives in memory.
import { Client } from '@natter/sdk';

const REFRESH = 'natter.refresh';
const DEVICE = 'natter.device';

function deviceId(): string {
  let id = localStorage.getItem(DEVICE);
  if (!id) {
    id = 'web-' + Math.random().toString(36).slice(2, 12);
    localStorage.setItem(DEVICE, id);
  }
  return id;
}

export function newClient(): Client {
  return new Client({
    url: location.origin,
    deviceId: deviceId(),
    platform: 'web',
    onRefreshToken: (t) => (t ? localStorage.setItem(REFRESH, t) : localStorage.removeItem(REFRESH)),
  });
}

export function keptRefreshToken(): string | null {
  return localStorage.getItem(REFRESH);
}
