"""Congo-Brazzaville SFEC (Système de Facturation Électronique Certifiée): online ERP certification,
reporting of certified invoices, and a simulator. See README.md for sources and decisions."""
