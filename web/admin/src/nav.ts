// The console's pages, in menu order: one entry per page, each page one file in
// pages/; a new page is one file and one line here. role is the weakest operator
// role that sees it (pages hide the buttons of ops the role may not call).
import type { ComponentType } from "preact";
import { Dashboard } from "./pages/Dashboard";
import { Users } from "./pages/Users";
import { Groups } from "./pages/Groups";
import { Audit } from "./pages/Audit";
import { Alerts } from "./pages/Alerts";
import { Operators } from "./pages/Operators";
import { Account } from "./pages/Account";
import { Words } from "./pages/Words";
import { Review } from "./pages/Review";
import { Config } from "./pages/Config";

export type Page = { path: string; title: string; role: string; component: ComponentType<{ param?: string }> };

export const pages: Page[] = [
  { path: "dashboard", title: "Dashboard", role: "auditor", component: Dashboard },
  { path: "users", title: "Users", role: "auditor", component: Users },
  { path: "groups", title: "Groups", role: "auditor", component: Groups },
  { path: "words", title: "Sensitive words", role: "auditor", component: Words },
  { path: "review", title: "Review queue", role: "auditor", component: Review },
  { path: "config", title: "Config & flags", role: "auditor", component: Config },
  { path: "audit", title: "Audit log", role: "auditor", component: Audit },
  { path: "alerts", title: "Alerts", role: "auditor", component: Alerts },
  { path: "operators", title: "Operators", role: "superadmin", component: Operators },
  { path: "account", title: "My account", role: "auditor", component: Account },
];
