/*
 * colname.c — the output column names of a select list, by PostgreSQL
 * 15's FigureColname (parse_target.c), from the raw parse tree (see
 * colname.h).
 *
 * PostgreSQL names a column from its expression before analysis: a column
 * reference by its last field, a function call by the function's name, a
 * cast by its argument's name or else the type's, and so on; what has no
 * name of its own is "?column?". The rules are PostgreSQL 15's, case by
 * case, so that the gather planner's final query names its columns as the
 * original statement would have had them.
 */
#include "router/colname.h"

#include <stddef.h>

#include "router/tree.h"
#include "router/tree_int.h"

static int figure_colname(const PgQuery__Node *n, const char **name);

static const char *svf_name(PgQuery__SQLValueFunctionOp op)
{
	switch (op) {
	case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_CURRENT_DATE:
		return "current_date";
	case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_CURRENT_TIME:
	case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_CURRENT_TIME_N:
		return "current_time";
	case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_CURRENT_TIMESTAMP:
	case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_CURRENT_TIMESTAMP_N:
		return "current_timestamp";
	case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_LOCALTIME:
	case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_LOCALTIME_N:
		return "localtime";
	case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_LOCALTIMESTAMP:
	case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_LOCALTIMESTAMP_N:
		return "localtimestamp";
	case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_CURRENT_ROLE:
		return "current_role";
	case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_CURRENT_USER:
		return "current_user";
	case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_USER:
		return "user";
	case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_SESSION_USER:
		return "session_user";
	case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_CURRENT_CATALOG:
		return "current_catalog";
	case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_CURRENT_SCHEMA:
		return "current_schema";
	default:
		return NULL;
	}
}

static const char *xml_name(PgQuery__XmlExprOp op)
{
	switch (op) {
	case PG_QUERY__XML_EXPR_OP__IS_XMLCONCAT:
		return "xmlconcat";
	case PG_QUERY__XML_EXPR_OP__IS_XMLELEMENT:
		return "xmlelement";
	case PG_QUERY__XML_EXPR_OP__IS_XMLFOREST:
		return "xmlforest";
	case PG_QUERY__XML_EXPR_OP__IS_XMLPARSE:
		return "xmlparse";
	case PG_QUERY__XML_EXPR_OP__IS_XMLPI:
		return "xmlpi";
	case PG_QUERY__XML_EXPR_OP__IS_XMLROOT:
		return "xmlroot";
	case PG_QUERY__XML_EXPR_OP__IS_XMLSERIALIZE:
		return "xmlserialize";
	default:
		return NULL;
	}
}

/* The name of a subquery's first output column, as its Query would have it. */
static const char *subselect_name(const PgQuery__Node *q)
{
	const PgQuery__SelectStmt *s;
	const PgQuery__ResTarget *r;
	const char *name = NULL;

	if (q == NULL || q->node_case != NODE(SELECT_STMT))
		return NULL;
	s = q->select_stmt;
	while (s->larg != NULL && s->op != PG_QUERY__SET_OPERATION__SETOP_NONE)
		s = s->larg;
	if (s->n_target_list == 0 || s->target_list[0]->node_case != NODE(RES_TARGET))
		return NULL;
	r = s->target_list[0]->res_target;
	if (r->name != NULL && r->name[0] != '\0')
		return r->name;
	figure_colname(r->val, &name);
	return name != NULL ? name : "?column?";
}

/* FigureColnameInternal: 2 for a sure name, 1 for a fallback (a type's name), 0 none */
static int figure_colname(const PgQuery__Node *n, const char **name)
{
	int strength;

	if (n == NULL)
		return 0;
	switch (n->node_case) {
	case NODE(COLUMN_REF): {
		const char *s = tree_last_string(n->column_ref->fields, n->column_ref->n_fields);

		if (s != NULL) {
			*name = s;
			return 2;
		}
		return 0;
	}
	case NODE(A_INDIRECTION): {
		const PgQuery__AIndirection *a = n->a_indirection;
		const char *s = tree_last_string(a->indirection, a->n_indirection);

		if (s != NULL) {
			*name = s;
			return 2;
		}
		return figure_colname(a->arg, name);
	}
	case NODE(FUNC_CALL): {
		const char *s =
		    n->func_call->n_funcname > 0
		        ? tree_str_of(n->func_call->funcname[n->func_call->n_funcname - 1])
		        : NULL;

		if (s == NULL)
			return 0;
		*name = s;
		return 2;
	}
	case NODE(A_EXPR):
		if (n->a_expr->kind == PG_QUERY__A__EXPR__KIND__AEXPR_NULLIF) {
			*name = "nullif";
			return 2;
		}
		return 0;
	case NODE(TYPE_CAST): {
		const PgQuery__TypeName *t = n->type_cast->type_name;

		strength = figure_colname(n->type_cast->arg, name);
		if (strength <= 1 && t != NULL && t->n_names > 0 &&
		    tree_str_of(t->names[t->n_names - 1]) != NULL) {
			*name = tree_str_of(t->names[t->n_names - 1]);
			return 1;
		}
		return strength;
	}
	case NODE(COLLATE_CLAUSE):
		return figure_colname(n->collate_clause->arg, name);
	case NODE(GROUPING_FUNC):
		*name = "grouping";
		return 2;
	case NODE(SUB_LINK):
		switch (n->sub_link->sub_link_type) {
		case PG_QUERY__SUB_LINK_TYPE__EXISTS_SUBLINK:
			*name = "exists";
			return 2;
		case PG_QUERY__SUB_LINK_TYPE__ARRAY_SUBLINK:
			*name = "array";
			return 2;
		case PG_QUERY__SUB_LINK_TYPE__EXPR_SUBLINK: {
			const char *s = subselect_name(n->sub_link->subselect);

			if (s == NULL)
				return 0;
			*name = s;
			return 2;
		}
		default:
			return 0;
		}
	case NODE(CASE_EXPR):
		strength = figure_colname(n->case_expr->defresult, name);
		if (strength <= 1) {
			*name = "case";
			return 1;
		}
		return strength;
	case NODE(A_ARRAY_EXPR):
		*name = "array";
		return 2;
	case NODE(ROW_EXPR):
		*name = "row";
		return 2;
	case NODE(COALESCE_EXPR):
		*name = "coalesce";
		return 2;
	case NODE(MIN_MAX_EXPR):
		if (n->min_max_expr->op == PG_QUERY__MIN_MAX_OP__IS_GREATEST) {
			*name = "greatest";
			return 2;
		}
		if (n->min_max_expr->op == PG_QUERY__MIN_MAX_OP__IS_LEAST) {
			*name = "least";
			return 2;
		}
		return 0;
	case NODE(SQLVALUE_FUNCTION): {
		const char *s = svf_name(n->sqlvalue_function->op);

		if (s == NULL)
			return 0;
		*name = s;
		return 2;
	}
	case NODE(XML_EXPR): {
		const char *s = xml_name(n->xml_expr->op);

		if (s == NULL)
			return 0;
		*name = s;
		return 2;
	}
	case NODE(XML_SERIALIZE):
		*name = "xmlserialize";
		return 2;
	default:
		return 0;
	}
}

const char *colname_of_target(const PgQuery__ResTarget *r)
{
	const char *name = NULL;

	if (r->name != NULL && r->name[0] != '\0') /* unpacked, an unset string is "" */
		return r->name;
	if (tree_is_star(r->val))
		return NULL;
	figure_colname(r->val, &name);
	return name != NULL ? name : "?column?";
}
